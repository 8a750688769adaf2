package history_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func inEpoch(epoch uint64, r *imv1.SequencedRecord) *imv1.SequencedRecord {
	r.Epoch = epoch
	return r
}

// TestReadsServeOnlyTheCurrentEpoch: g:team's stream was rebuilt from
// nothing (epoch 20 after 10), reusing seqs 1..3. Reads, their
// completeness and the user's periods are of epoch 20 only, before and
// after the table merges the reused seqs.
func TestReadsServeOnlyTheCurrentEpoch(t *testing.T) {
	store, conn, db := newStore(t)
	const C, J, L = imv1.MembershipEvent_CREATED, imv1.MembershipEvent_JOINED, imv1.MembershipEvent_LEFT
	insert(t, store,
		inEpoch(10, membership("g:team", 1, C, "Team", "alice", "bob")),
		inEpoch(10, membership("g:team", 2, J, "", "carol")),
		inEpoch(10, message("g:team", 3, "old three")),
		inEpoch(10, message("g:team", 4, "old four")),
		inEpoch(10, membership("g:team", 5, L, "", "bob")),
		inEpoch(10, message("g:team", 6, "old six")),
	)
	insert(t, store,
		inEpoch(20, membership("g:team", 1, C, "Team", "alice", "bob")),
		inEpoch(20, message("g:team", 2, "new two")),
		inEpoch(20, message("g:team", 3, "new three")),
	)
	describe := func(p history.Page) string {
		s := fmt.Sprintf("e%d upto%d:", p.Epoch, p.CompleteUpTo)
		for _, r := range p.Entries {
			s += fmt.Sprintf(" %d/e%d/%s%s", r.Seq, r.Epoch, r.Kind, r.Body)
		}
		return s
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			user, want string
			after      uint64
		}{
			{"alice", "e20 upto3: 1/e20/created 2/e20/messagenew two 3/e20/messagenew three", 0},
			{"bob", "e20 upto3: 2/e20/messagenew two 3/e20/messagenew three", 1},
		} {
			p, err := history.Read(context.Background(), store, history.ReadRequest{ConversationID: "g:team", User: c.user, AfterSeq: c.after})
			if err != nil {
				t.Fatalf("%s: %s: %v", when, c.user, err)
			}
			if got := describe(p); got != c.want {
				t.Errorf("%s: %s after %d:\n got %s\nwant %s", when, c.user, c.after, got, c.want)
			}
		}
		// carol joined at seq 2 of epoch 10 only: no member of epoch 20.
		_, err := history.Read(context.Background(), store, history.ReadRequest{ConversationID: "g:team", User: "carol"})
		if e, ok := err.(*history.Error); !ok || e.Code != history.CodeNotMember {
			t.Errorf("%s: carol read epoch 20: %v, want not_member", when, err)
		}
	}
	check("before merges")
	if err := conn.Exec(context.Background(), "OPTIMIZE TABLE "+db+".messages FINAL"); err != nil {
		t.Fatal(err)
	}
	check("after merges")
}
