package ingest

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// checkAccepted is the property both fuzz targets check: Validate answers
// nil or an *Error with a known code, and whatever it accepts encodes (so
// Submit never fails on a send Validate let through).
func checkAccepted(t *testing.T, s Send) {
	t.Helper()
	err := Validate(s, Limits{})
	var e *Error
	switch {
	case err == nil:
	case errors.As(err, &e) && (e.Code == CodeInvalid || e.Code == CodeNotMember):
		return
	default:
		t.Fatalf("Validate = %v (%T), want nil or an *Error with a known code", err, err)
	}
	if len(s.ConversationID) > DefaultMaxIDBytes ||
		!(strings.HasPrefix(s.ConversationID, "dm:") || strings.HasPrefix(s.ConversationID, "g:")) {
		t.Fatalf("accepted conversation id %q", s.ConversationID)
	}
	rec := &imv1.RawRecord{Version: imv1.Version, ConversationId: s.ConversationID, ClientMsgId: s.ClientMsgID,
		SenderUserId: s.SenderUserID, SenderDeviceId: s.SenderDeviceID, ClientSeq: s.ClientSeq}
	if s.Message != nil {
		rec.Body = &imv1.RawRecord_Message{Message: s.Message}
	} else {
		rec.Body = &imv1.RawRecord_Control{Control: s.Control}
	}
	if _, err := imv1.Marshal(rec); err != nil {
		t.Fatalf("Validate accepted a send that does not encode: %v", err)
	}
}

// FuzzValidate builds sends of every shape from arbitrary strings.
func FuzzValidate(f *testing.F) {
	f.Add("dm:alice:bob", "c-1", "alice", "phone", uint64(1), uint8(0), "text/plain", "hello", []byte("body"))
	f.Add("g:team", "c-2", "alice", "server", uint64(0), uint8(1), "Launch", "bob,carol", []byte(nil))
	f.Add("g:team", "c-3", "bob", "web:1", uint64(7), uint8(2), "carol", "", []byte(nil))
	f.Add("g:org:team", "c:4", "bob", "d", uint64(2), uint8(3), "", "", []byte(nil))
	f.Add("g:team", "c-5", "alice", "d", uint64(3), uint8(4), "mallory", "", []byte(nil))
	f.Add("dm:bob:alice", "c 6", "carol", "", uint64(0), uint8(5), "\xff", ",,", []byte{0xff})
	f.Add("dm:alice:bob", "c-7", "carol", "d", uint64(0), uint8(6), "a", "b", []byte("x"))
	f.Fuzz(func(t *testing.T, conv, cmid, user, device string, seq uint64, kind uint8, a, b string, body []byte) {
		s := Send{ConversationID: conv, ClientMsgID: cmid, SenderUserID: user, SenderDeviceID: device, ClientSeq: seq}
		switch kind % 8 {
		case 0:
			s.Message = &imv1.ChatMessage{ContentType: a, Body: body}
		case 1:
			var members []string
			if b != "" {
				members = strings.Split(b, ",")
			}
			s.Control = &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{Title: a, InitialMembers: members}}}
		case 2:
			s.Control = &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: a}}}
		case 3:
			s.Control = &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}}
		case 4:
			s.Control = &imv1.Control{Op: &imv1.Control_Kick{Kick: &imv1.Kick{UserId: a}}}
		case 5: // neither
		case 6:
			s.Message = &imv1.ChatMessage{ContentType: a}
			s.Control = &imv1.Control{}
		case 7:
			s.Control = &imv1.Control{Op: &imv1.Control_Join{}}
		}
		checkAccepted(t, s)
	})
}

// FuzzHTTPRequests feeds arbitrary bytes to the HTTP API's decoding of every
// endpoint: it must never panic, answer only 400 or 413, and turn what it
// accepts into sends that Validate judges as in FuzzValidate.
func FuzzHTTPRequests(f *testing.F) {
	f.Add([]byte(`{"conversation_id":"dm:alice:bob","client_msg_id":"c-1","sender_user_id":"alice","content_type":"text/plain","body":"hi"}`), "team", "dave", "client_msg_id=c-1&actor_user_id=alice")
	f.Add([]byte(`{"group_id":"team","client_msg_id":"c-2","creator_user_id":"alice","title":"T","members":["bob"]}`), "team", "dave", "client_msg_id=c-2")
	f.Add([]byte(`{"user_id":"dave","actor_user_id":"alice","client_msg_id":"c-3"}`), "a/b", "", "x=1")
	f.Add([]byte(`{"client_seq":-1}`), "", "", "client_msg_id=a&client_msg_id=b")
	f.Add([]byte(`{"body":"\ud800"} {}`), "g", "u", "%zz")
	f.Add([]byte(`[`), "g", "u", "")
	f.Add([]byte(``), "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, group, user, query string) {
		const max = 4096
		decode := func(v any) bool {
			r := http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, max)
			err := decodeJSON(r, v, max)
			if err != nil && err.status != http.StatusBadRequest && err.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("decode answered %d %s", err.status, err.code)
			}
			if err == nil && len(body) > max {
				t.Fatalf("decode accepted %d bytes over a limit of %d", len(body), max)
			}
			return err == nil
		}
		var m messageRequest
		if decode(&m) {
			checkAccepted(t, m.send())
		}
		var g groupRequest
		if decode(&g) {
			checkAccepted(t, g.send())
		}
		var j memberRequest
		if decode(&j) {
			checkAccepted(t, j.send(group))
		}
		if q, err := url.ParseQuery(query); err == nil {
			if s, herr := removeMember(group, user, q); herr == nil {
				checkAccepted(t, s)
			}
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
