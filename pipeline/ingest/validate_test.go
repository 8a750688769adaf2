package ingest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func text(body string) *imv1.ChatMessage {
	return &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(body)}
}

func dmSend() ingest.Send {
	return ingest.Send{ConversationID: "dm:alice:bob", ClientMsgID: "c-1", SenderUserID: "alice",
		SenderDeviceID: "phone", ClientSeq: 1, Message: text("hi")}
}

func groupSend(c *imv1.Control) ingest.Send {
	return ingest.Send{ConversationID: "g:team", ClientMsgID: "c-1", SenderUserID: "alice",
		SenderDeviceID: "phone", ClientSeq: 1, Control: c}
}

func createGroup(title string, members ...string) *imv1.Control {
	return &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{Title: title, InitialMembers: members}}}
}

func join(user string) *imv1.Control {
	return &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: user}}}
}

func leave() *imv1.Control {
	return &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}}
}

func kick(user string) *imv1.Control {
	return &imv1.Control{Op: &imv1.Control_Kick{Kick: &imv1.Kick{UserId: user}}}
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user%d", i)
	}
	return out
}

// TestValidate covers every rule of Validate: each case changes one field of
// a valid send (or the limits) and names the code it must get ("" = valid).
func TestValidate(t *testing.T) {
	withMsg := func(m *imv1.ChatMessage) func(*ingest.Send) { return func(s *ingest.Send) { s.Message = m } }
	conv := func(c string) func(*ingest.Send) { return func(s *ingest.Send) { s.ConversationID = c } }
	ctrl := func(c *imv1.Control) func(*ingest.Send) {
		return func(s *ingest.Send) { *s = groupSend(c) }
	}
	rev := func(r *imv1.Revision) func(*ingest.Send) {
		return func(s *ingest.Send) { s.Message, s.Revision = nil, r }
	}
	mark := func(seq, clientSeq uint64) func(*ingest.Send) {
		return func(s *ingest.Send) { s.Message, s.Read, s.ClientSeq = nil, &imv1.ReadMark{Seq: seq}, clientSeq }
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	small := ingest.Limits{MaxBodyBytes: 4, MaxIDBytes: 8, MaxContentTypeBytes: 4, MaxTitleBytes: 3, MaxInitialMembers: 2}

	cases := []struct {
		name   string
		change func(*ingest.Send)
		limits ingest.Limits
		want   string
	}{
		// Valid sends.
		{name: "dm from the first user", change: func(*ingest.Send) {}},
		{name: "dm from the second user", change: func(s *ingest.Send) { s.SenderUserID = "bob" }},
		{name: "group message", change: conv("g:team")},
		{name: "group id with colons", change: conv("g:org:team:2")},
		{name: "client_seq 0 asks for no device order", change: func(s *ingest.Send) { s.ClientSeq = 0 }},
		{name: "every allowed id byte", change: func(s *ingest.Send) {
			s.ConversationID = "dm:AZaz09._@-:b"
			s.SenderUserID = "AZaz09._@-"
		}},
		{name: "colons in device and client_msg_id", change: func(s *ingest.Send) {
			s.SenderDeviceID = "web:tab:2"
			s.ClientMsgID = "import:2024:000001"
		}},
		{name: "client_msg_id of 128 bytes", change: func(s *ingest.Send) { s.ClientMsgID = long(128) }},
		{name: "conversation id of 128 bytes", change: conv("g:" + long(126))},
		{name: "empty body", change: withMsg(text(""))},
		{name: "body of 16384 bytes (zero limits are the defaults)", change: withMsg(text(long(16384)))},
		{name: "content type with parameters", change: withMsg(&imv1.ChatMessage{ContentType: "text/plain; charset=utf-8"})},
		{name: "content type of 128 bytes", change: withMsg(&imv1.ChatMessage{ContentType: long(128)})},
		{name: "create_group", change: ctrl(createGroup("Launch", "bob", "carol"))},
		{name: "create_group without title or members", change: ctrl(createGroup(""))},
		{name: "create_group title of 256 UTF-8 bytes", change: ctrl(createGroup(strings.Repeat("é", 128)))},
		{name: "create_group with 1000 members", change: ctrl(createGroup("t", members(1000)...))},
		{name: "create_group listing the creator", change: ctrl(createGroup("t", "alice", "bob"))},
		{name: "join", change: ctrl(join("bob"))},
		{name: "leave", change: ctrl(leave())},
		{name: "kick", change: ctrl(kick("mallory"))},
		{name: "read mark", change: mark(42, 0)},
		{name: "read mark of seq 0", change: mark(0, 0), want: "invalid"},
		{name: "read mark with a client_seq", change: mark(42, 3), want: "invalid"},
		{name: "read mark and a message", change: func(s *ingest.Send) { s.ClientSeq, s.Read = 0, &imv1.ReadMark{Seq: 1} }, want: "invalid"},
		{name: "small limits, at the limits", limits: small, change: func(s *ingest.Send) {
			*s = ingest.Send{ConversationID: "g:abcdef", ClientMsgID: long(8), SenderUserID: long(8),
				SenderDeviceID: long(8), Message: &imv1.ChatMessage{ContentType: "a/bc", Body: []byte("1234")}}
		}},
		{name: "small limits, create_group at the limits", limits: small, change: func(s *ingest.Send) {
			*s = groupSend(createGroup("abc", "b", "c"))
		}},

		// Conversation ids.
		{name: "empty conversation", change: conv(""), want: "invalid"},
		{name: "unknown conversation kind", change: conv("x:alice"), want: "invalid"},
		{name: "upper-case DM prefix", change: conv("DM:alice:bob"), want: "invalid"},
		{name: "dm without users", change: conv("dm:"), want: "invalid"},
		{name: "dm with one user", change: conv("dm:alice"), want: "invalid"},
		{name: "dm with an empty second user", change: conv("dm:alice:"), want: "invalid"},
		{name: "dm with an empty first user", change: conv("dm::bob"), want: "invalid"},
		{name: "dm unsorted", change: conv("dm:bob:alice"), want: "invalid"},
		{name: "dm with itself", change: conv("dm:alice:alice"), want: "invalid"},
		{name: "dm with three users", change: conv("dm:alice:bob:carol"), want: "invalid"},
		{name: "dm user with a space", change: conv("dm:al ice:bob"), want: "invalid"},
		{name: "empty group id", change: conv("g:"), want: "invalid"},
		{name: "group id with a slash", change: conv("g:a/b"), want: "invalid"},
		{name: "group id not ASCII", change: conv("g:équipe"), want: "invalid"},
		{name: "conversation id of 129 bytes", change: conv("g:" + long(127)), want: "invalid"},
		{name: "small limits, conversation id of 9 bytes", limits: small, change: func(s *ingest.Send) {
			*s = ingest.Send{ConversationID: "g:abcdefg", ClientMsgID: "c", SenderUserID: "a", SenderDeviceID: "d",
				Message: &imv1.ChatMessage{ContentType: "a/b"}}
		}, want: "invalid"},

		// Sender and idempotency ids.
		{name: "empty client_msg_id", change: func(s *ingest.Send) { s.ClientMsgID = "" }, want: "invalid"},
		{name: "client_msg_id of 129 bytes", change: func(s *ingest.Send) { s.ClientMsgID = long(129) }, want: "invalid"},
		{name: "client_msg_id with a space", change: func(s *ingest.Send) { s.ClientMsgID = "c 1" }, want: "invalid"},
		{name: "client_msg_id with NUL", change: func(s *ingest.Send) { s.ClientMsgID = "c\x00" }, want: "invalid"},
		{name: "empty sender", change: func(s *ingest.Send) { s.SenderUserID = "" }, want: "invalid"},
		{name: "sender with a colon", change: func(s *ingest.Send) { s.SenderUserID = "alice:x" }, want: "invalid"},
		{name: "sender of 129 bytes", change: func(s *ingest.Send) { s.SenderUserID = long(129) }, want: "invalid"},
		{name: "sender not ASCII", change: func(s *ingest.Send) { s.SenderUserID = "ålice" }, want: "invalid"},
		{name: "empty device", change: func(s *ingest.Send) { s.SenderDeviceID = "" }, want: "invalid"},
		{name: "device with a slash", change: func(s *ingest.Send) { s.SenderDeviceID = "a/b" }, want: "invalid"},
		{name: "device of 129 bytes", change: func(s *ingest.Send) { s.SenderDeviceID = long(129) }, want: "invalid"},
		{name: "small limits, id of 9 bytes", limits: small, change: func(s *ingest.Send) { s.ClientMsgID = long(9) }, want: "invalid"},

		// Body.
		{name: "neither message nor control", change: func(s *ingest.Send) { s.Message = nil }, want: "invalid"},
		{name: "message and control", change: func(s *ingest.Send) { s.Control = leave() }, want: "invalid"},
		{name: "empty content type", change: withMsg(&imv1.ChatMessage{Body: []byte("x")}), want: "invalid"},
		{name: "content type of 129 bytes", change: withMsg(&imv1.ChatMessage{ContentType: long(129)}), want: "invalid"},
		{name: "content type with a newline", change: withMsg(&imv1.ChatMessage{ContentType: "text/plain\n"}), want: "invalid"},
		{name: "content type not ASCII", change: withMsg(&imv1.ChatMessage{ContentType: "text/é"}), want: "invalid"},
		{name: "body of 16385 bytes", change: withMsg(text(long(16385))), want: "invalid"},
		{name: "small limits, body of 5 bytes", limits: small, change: func(s *ingest.Send) {
			*s = ingest.Send{ConversationID: "g:a", ClientMsgID: "c", SenderUserID: "a", SenderDeviceID: "d",
				Message: &imv1.ChatMessage{ContentType: "a/b", Body: []byte("12345")}}
		}, want: "invalid"},
		{name: "small limits, content type of 5 bytes", limits: small, change: func(s *ingest.Send) {
			*s = ingest.Send{ConversationID: "g:a", ClientMsgID: "c", SenderUserID: "a", SenderDeviceID: "d",
				Message: &imv1.ChatMessage{ContentType: "a/bcd"}}
		}, want: "invalid"},

		// Revisions.
		{name: "an edit", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Edit{Edit: text("v2")}})},
		{name: "a recall", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}})},
		{name: "revision of seq 0", change: rev(&imv1.Revision{Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}}), want: "invalid"},
		{name: "revision without op", change: rev(&imv1.Revision{TargetSeq: 3}), want: "invalid"},
		{name: "edit without message", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Edit{}}), want: "invalid"},
		{name: "recall wrapper holding nil", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Recall{}}), want: "invalid"},
		{name: "edit with an empty content type", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Edit{Edit: &imv1.ChatMessage{Body: []byte("x")}}}), want: "invalid"},
		{name: "edit body of 16385 bytes", change: rev(&imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Edit{Edit: text(long(16385))}}), want: "invalid"},
		{name: "revision and message", change: func(s *ingest.Send) {
			s.Revision = &imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}}
		}, want: "invalid"},

		// Controls.
		{name: "control without op", change: ctrl(&imv1.Control{}), want: "invalid"},
		{name: "join wrapper holding nil", change: ctrl(&imv1.Control{Op: &imv1.Control_Join{}}), want: "invalid"},
		{name: "typed nil create_group wrapper", change: ctrl(&imv1.Control{Op: (*imv1.Control_CreateGroup)(nil)}), want: "invalid"},
		{name: "leave wrapper holding nil", change: ctrl(&imv1.Control{Op: &imv1.Control_Leave{}}), want: "invalid"},
		{name: "kick wrapper holding nil", change: ctrl(&imv1.Control{Op: &imv1.Control_Kick{}}), want: "invalid"},
		{name: "create_group on a dm", change: func(s *ingest.Send) { s.Message, s.Control = nil, createGroup("t") }, want: "invalid"},
		{name: "join on a dm", change: func(s *ingest.Send) { s.Message, s.Control = nil, join("carol") }, want: "invalid"},
		{name: "leave on a dm", change: func(s *ingest.Send) { s.Message, s.Control = nil, leave() }, want: "invalid"},
		{name: "kick on a dm", change: func(s *ingest.Send) { s.Message, s.Control = nil, kick("bob") }, want: "invalid"},
		{name: "join without user", change: ctrl(join("")), want: "invalid"},
		{name: "join of a user with a colon", change: ctrl(join("bob:x")), want: "invalid"},
		{name: "join of a user of 129 bytes", change: ctrl(join(long(129))), want: "invalid"},
		{name: "kick without user", change: ctrl(kick("")), want: "invalid"},
		{name: "kick of a user with a space", change: ctrl(kick("bo b")), want: "invalid"},
		{name: "create_group title of 257 bytes", change: ctrl(createGroup(long(257))), want: "invalid"},
		{name: "create_group title not UTF-8", change: ctrl(createGroup("\xff")), want: "invalid"},
		{name: "create_group with 1001 members", change: ctrl(createGroup("t", members(1001)...)), want: "invalid"},
		{name: "create_group with an empty member", change: ctrl(createGroup("t", "bob", "")), want: "invalid"},
		{name: "create_group with a member with a colon", change: ctrl(createGroup("t", "bob:x")), want: "invalid"},
		{name: "create_group listing a member twice", change: ctrl(createGroup("t", "bob", "carol", "bob")), want: "invalid"},
		{name: "small limits, title of 4 bytes", limits: small, change: ctrl(createGroup("abcd")), want: "invalid"},
		{name: "small limits, 3 members", limits: small, change: ctrl(createGroup("t", "b", "c", "d")), want: "invalid"},

		// Authority (I8).
		{name: "dm sender not one of its users", change: func(s *ingest.Send) { s.SenderUserID = "carol" }, want: "not_member"},
		{name: "malformed beats not_member", change: func(s *ingest.Send) {
			s.SenderUserID = "carol"
			s.Message = &imv1.ChatMessage{}
		}, want: "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := dmSend()
			c.change(&s)
			err := ingest.Validate(s, c.limits)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var e *ingest.Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate = %v (%T), want an *ingest.Error with code %s", err, err, c.want)
			}
			if e.Code != c.want || e.Message == "" {
				t.Fatalf("Validate = code %q message %q, want code %q and a message", e.Code, e.Message, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want+": ") {
				t.Errorf("Error() = %q, want it to start with the code", err.Error())
			}
		})
	}
}

// TestValidateShortensEchoedInput: a message quotes offending input, but
// never a whole oversized field.
func TestValidateShortensEchoedInput(t *testing.T) {
	s := dmSend()
	s.ClientMsgID = strings.Repeat("x", 10000) + " "
	err := ingest.Validate(s, ingest.Limits{MaxIDBytes: 20000})
	if err == nil {
		t.Fatal("Validate accepted a client_msg_id with a space")
	}
	if n := len(err.Error()); n > 300 {
		t.Fatalf("error message is %d bytes: %.100s...", n, err.Error())
	}
}

func TestConversationIDHelpers(t *testing.T) {
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		if got := ingest.DMConversationID(pair[0], pair[1]); got != "dm:alice:bob" {
			t.Errorf("DMConversationID(%q, %q) = %q, want dm:alice:bob", pair[0], pair[1], got)
		}
	}
	if got := ingest.GroupConversationID("team"); got != "g:team" {
		t.Errorf("GroupConversationID(team) = %q, want g:team", got)
	}
	// What the helpers build is what Validate accepts.
	s := dmSend()
	s.ConversationID = ingest.DMConversationID("zoe", "adam")
	s.SenderUserID = "zoe"
	if err := ingest.Validate(s, ingest.Limits{}); err != nil {
		t.Errorf("DMConversationID(zoe, adam) does not validate: %v", err)
	}
	s.ConversationID = ingest.DMConversationID("zoe", "zoe")
	if err := ingest.Validate(s, ingest.Limits{}); err == nil {
		t.Errorf("a dm of zoe with herself validated")
	}
}
