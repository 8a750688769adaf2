package fanout

import (
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func entry(conv string, seq uint64, sender string, ev *imv1.MembershipEvent) *imv1.SequencedRecord {
	r := &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, Seq: seq, SenderUserId: sender}
	if ev != nil {
		r.Body = &imv1.SequencedRecord_Membership{Membership: ev}
	} else {
		r.Body = &imv1.SequencedRecord_Message{Message: &imv1.ChatMessage{}}
	}
	return r
}

func ev(kind imv1.MembershipEvent_Kind, users ...string) *imv1.MembershipEvent {
	return &imv1.MembershipEvent{Kind: kind, UserIds: users}
}

func TestRecipientsFollowMembershipExactly(t *testing.T) {
	m := NewMembers()
	g := "g:team"
	steps := []struct {
		r    *imv1.SequencedRecord
		want string
	}{
		{entry(g, 1, "alice", ev(imv1.MembershipEvent_CREATED, "alice", "bob")), "[alice bob]"},
		{entry(g, 2, "bob", nil), "[alice bob]"},
		{entry(g, 3, "bob", ev(imv1.MembershipEvent_JOINED, "carol")), "[alice bob carol]"}, // carol receives from her join
		{entry(g, 4, "carol", nil), "[alice bob carol]"},
		{entry(g, 5, "bob", ev(imv1.MembershipEvent_LEFT, "bob")), "[alice bob carol]"}, // bob sees his leave...
		{entry(g, 6, "alice", nil), "[alice carol]"},                                    // ...and nothing after
		{entry(g, 7, "alice", ev(imv1.MembershipEvent_KICKED, "carol")), "[alice carol]"},
		{entry(g, 8, "alice", nil), "[alice]"},
		{&imv1.SequencedRecord{ConversationId: g, SenderUserId: "mallory",
			Body: &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{Code: "not_member"}}}, "[mallory]"},
		{entry("dm:ann:ben", 1, "ann", nil), "[ann ben]"},
	}
	for _, s := range steps {
		if got := fmt.Sprint(m.Recipients(s.r)); got != s.want {
			t.Fatalf("%s seq %d: recipients %s, want %s", s.r.ConversationId, s.r.Seq, got, s.want)
		}
	}
	if m.IsMember(g, "bob") || !m.IsMember(g, "alice") || !m.IsMember("dm:ann:ben", "ben") || m.IsMember("dm:ann:ben", "carl") {
		t.Fatal("IsMember disagrees with the events applied")
	}
}

// TestReplayWithStateAheadGivesSameRecipients: after a restart the fanout
// replays entries from its committed offset with periods restored from a
// later point; every entry must still reach exactly the same users.
func TestReplayWithStateAheadGivesSameRecipients(t *testing.T) {
	g := "g:churn"
	log := []*imv1.SequencedRecord{
		entry(g, 1, "a", ev(imv1.MembershipEvent_CREATED, "a", "b")),
		entry(g, 2, "a", nil),
		entry(g, 3, "b", ev(imv1.MembershipEvent_LEFT, "b")),
		entry(g, 4, "a", nil),
		entry(g, 5, "a", ev(imv1.MembershipEvent_JOINED, "b")),
		entry(g, 6, "a", ev(imv1.MembershipEvent_JOINED, "c")),
		entry(g, 7, "b", nil),
		entry(g, 8, "a", ev(imv1.MembershipEvent_KICKED, "c")),
		entry(g, 9, "a", nil),
	}
	first := NewMembers()
	want := make([]string, len(log))
	for i, r := range log {
		want[i] = fmt.Sprint(first.Recipients(r))
	}
	for ahead := 0; ahead <= len(log); ahead++ {
		for from := 0; from <= ahead; from++ {
			// State persisted after entry ahead-1; replay resumes at from.
			m := NewMembers()
			for _, r := range log[:ahead] {
				m.Recipients(r)
			}
			restored := RestoreMembers(m.TakeChanges())
			for i := from; i < len(log); i++ {
				if got := fmt.Sprint(restored.Recipients(log[i])); got != want[i] {
					t.Fatalf("state after %d, replay from %d: seq %d goes to %s, want %s", ahead, from, log[i].Seq, got, want[i])
				}
			}
		}
	}
}
