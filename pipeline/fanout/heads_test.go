package fanout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// routeAll applies records as a worker routes them: membership first, then
// the head.
func routeAll(m *Members, h *Heads, rs ...*imv1.SequencedRecord) {
	for _, r := range rs {
		m.Recipients(r)
		if r.Seq > 0 {
			h.Observe(r.ConversationId, r.Epoch, r.Seq)
		}
	}
}

// restoreFrom restores heads and periods as a worker does from what was
// persisted (the compacted topic keeps each key's latest record).
func restoreFrom(persisted []*imv1.FanoutMembership) (*Heads, *Members) {
	latest := map[string]*imv1.FanoutMembership{}
	for _, fm := range persisted {
		latest[key(fm)] = fm
	}
	restored := NewHeads()
	var memberships []*imv1.FanoutMembership
	for _, fm := range latest {
		if !restored.restore(fm) {
			memberships = append(memberships, fm)
		}
	}
	return restored, RestoreMembers(memberships)
}

func describe(convs []*imv1.RoutedConversation) string {
	var b strings.Builder
	for _, rc := range convs {
		fmt.Fprintf(&b, "%s@%d/from%d ", rc.ConversationId, rc.LastSeq, rc.MemberFrom)
	}
	return strings.TrimSpace(b.String())
}

func TestHeadsListEveryConversationOfAUserWithWhatItMaySee(t *testing.T) {
	m, h := NewMembers(), NewHeads()
	h.StartComplete()
	g := "g:team"
	routeAll(m, h,
		entry(g, 1, "alice", ev(imv1.MembershipEvent_CREATED, "alice", "bob")),
		entry(g, 2, "bob", nil),
		entry(g, 3, "alice", ev(imv1.MembershipEvent_JOINED, "carol")),
		entry(g, 4, "bob", ev(imv1.MembershipEvent_LEFT, "bob")),
		entry(g, 5, "alice", nil),
		entry("dm:bob:carol", 1, "bob", nil),
		entry("dm:bob:carol", 2, "carol", nil),
		entry("dm:alice:dave", 1, "dave", nil),
		entry(g, 6, "alice", nil),
	)
	h.Observe(g, 0, 3) // a replay after a restart: heads only grow
	cases := map[string]string{
		"alice": "dm:alice:dave@1/from1 g:team@6/from1",
		"bob":   "dm:bob:carol@2/from1 g:team@4/from1", // left at 4: sees no more
		"carol": "dm:bob:carol@2/from1 g:team@6/from3", // joined at 3
		"dave":  "dm:alice:dave@1/from1",
		"erin":  "",
	}
	for user, want := range cases {
		convs, complete := h.ConversationsOf(user, m)
		if got := describe(convs); got != want || !complete {
			t.Errorf("%s: %q complete %v, want %q complete", user, got, complete, want)
		}
	}
}

func TestHeadsRestoreFromWhatTheyPersisted(t *testing.T) {
	m, h := NewMembers(), NewHeads()
	h.StartComplete()
	routeAll(m, h, entry("g:a", 1, "ann", ev(imv1.MembershipEvent_CREATED, "ann", "ben")), entry("dm:ann:cy", 1, "cy", nil))
	persisted := append(m.TakeChanges(), h.TakeChanges()...)
	routeAll(m, h, entry("g:a", 2, "ben", nil), entry("dm:ann:cy", 2, "ann", nil))
	persisted = append(persisted, append(m.TakeChanges(), h.TakeChanges()...)...)
	if again := h.TakeChanges(); len(again) != 0 {
		t.Fatalf("nothing changed, yet %d heads to persist", len(again))
	}

	restored, rm := restoreFrom(persisted)
	for _, user := range []string{"ann", "ben", "cy"} {
		want, _ := h.ConversationsOf(user, m)
		got, complete := restored.ConversationsOf(user, rm)
		if describe(got) != describe(want) || !complete {
			t.Errorf("%s restored: %q complete %v, want %q complete", user, describe(got), complete, describe(want))
		}
	}

	incomplete := NewHeads() // a partition routed before heads were tracked
	incomplete.restore(&imv1.FanoutMembership{ConversationId: "dm:ann:cy", HeadSeq: 2})
	if _, complete := incomplete.ConversationsOf("ann", rm); complete {
		t.Error("heads without the partition's marker claim to be complete")
	}
}
