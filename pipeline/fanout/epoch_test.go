package fanout

import (
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func inEpoch(epoch uint64, r *imv1.SequencedRecord) *imv1.SequencedRecord {
	r.Epoch = epoch
	return r
}

func describeEpochs(convs []*imv1.RoutedConversation) string {
	s := ""
	for _, rc := range convs {
		s += fmt.Sprintf("%s@%d/from%d/e%d ", rc.ConversationId, rc.LastSeq, rc.MemberFrom, rc.Epoch)
	}
	return s
}

// TestNewerEpochStartsPeriodsAndHeadsAfresh: the sequencer's state was
// rebuilt from nothing, so g:team's seqs restart at 1 under epoch 20. The
// periods and head of epoch 10 must not decide who receives the new seqs,
// and what is persisted must say so after a restart too.
func TestNewerEpochStartsPeriodsAndHeadsAfresh(t *testing.T) {
	const g = "g:team"
	m, h := NewMembers(), NewHeads()
	h.StartComplete()
	route := func(rs ...*imv1.SequencedRecord) (out []string) {
		for _, r := range rs {
			if h.Observe(r.ConversationId, r.Epoch, r.Seq) {
				out = append(out, fmt.Sprint(m.Recipients(r)))
			} else {
				out = append(out, "obsolete")
			}
		}
		return out
	}
	route(
		inEpoch(10, entry(g, 1, "alice", ev(imv1.MembershipEvent_CREATED, "alice", "bob"))),
		inEpoch(10, entry(g, 2, "alice", ev(imv1.MembershipEvent_JOINED, "carol"))),
		inEpoch(10, entry(g, 3, "bob", nil)),
		inEpoch(10, entry("dm:alice:bob", 1, "bob", nil)),
		inEpoch(10, entry("dm:alice:bob", 2, "bob", nil)),
	)
	persisted := append(m.TakeChanges(), h.TakeChanges()...)

	got := route(
		inEpoch(20, entry(g, 1, "alice", ev(imv1.MembershipEvent_CREATED, "alice", "dave"))),
		inEpoch(20, entry(g, 2, "dave", nil)),
		inEpoch(10, entry(g, 4, "bob", nil)), // a late record of the old stream
		inEpoch(20, entry("dm:alice:bob", 1, "alice", nil)),
	)
	want := []string{"[alice dave]", "[alice dave]", "obsolete", "[alice bob]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recipients %v, want %v (carol joined at seq 2 of the old epoch only)", got, want)
	}
	persisted = append(persisted, append(m.TakeChanges(), h.TakeChanges()...)...)
	wantConvs := map[string]string{
		"alice": "dm:alice:bob@1/from1/e20 g:team@2/from1/e20 ",
		"bob":   "dm:alice:bob@1/from1/e20 ",
		"carol": "",
		"dave":  "g:team@2/from1/e20 ",
	}
	restored, rm := restoreFrom(persisted)
	for user, want := range wantConvs {
		if got, _ := h.ConversationsOf(user, m); describeEpochs(got) != want {
			t.Errorf("%s: %q, want %q", user, describeEpochs(got), want)
		}
		if got, _ := restored.ConversationsOf(user, rm); describeEpochs(got) != want {
			t.Errorf("%s restored: %q, want %q", user, describeEpochs(got), want)
		}
	}
	if r := rm.Recipients(inEpoch(20, entry(g, 3, "alice", nil))); fmt.Sprint(r) != "[alice dave]" {
		t.Errorf("restored recipients of seq 3 of the new epoch: %v", r)
	}
}
