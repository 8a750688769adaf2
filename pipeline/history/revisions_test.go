package history_test

import (
	"context"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func revision(conv string, seq, target uint64, edit string) *imv1.SequencedRecord {
	r := entry(conv, seq)
	rev := &imv1.Revision{TargetSeq: target, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}}
	if edit != "" {
		rev.Op = &imv1.Revision_Edit{Edit: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(edit)}}
	}
	r.Body = &imv1.SequencedRecord_Revision{Revision: rev}
	return r
}

// TestReadsApplyRevisions: a read shows each message as the revisions the
// reader could see left it (the last edit by seq; nothing once recalled,
// an edit of it included), and one who left before an edit keeps the text
// it saw. Duplicated rows change nothing.
func TestReadsApplyRevisions(t *testing.T) {
	store, _, _ := newStore(t)
	const C, L = imv1.MembershipEvent_CREATED, imv1.MembershipEvent_LEFT
	g := "g:rev"
	recs := []*imv1.SequencedRecord{
		membership(g, 1, C, "", "alice", "bob", "carol"), message(g, 2, "one"), message(g, 3, "two"),
		revision(g, 4, 2, "one!"), membership(g, 5, L, "", "carol"), revision(g, 6, 2, "one!!"),
		revision(g, 7, 3, "two!"), revision(g, 8, 3, ""), message(g, 9, "nine"),
	}
	insert(t, store, recs...)
	insert(t, store, recs[3:]...) // duplicates
	read := func(user string, after uint64, limit int) map[uint64]history.Row {
		t.Helper()
		page, err := history.Read(context.Background(), store, history.ReadRequest{ConversationID: g, User: user, AfterSeq: after, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint64]history.Row{}
		for _, r := range page.Entries {
			out[r.Seq] = r
		}
		return out
	}
	type view struct {
		body             string
		edited, recalled bool
	}
	check := func(who string, got map[uint64]history.Row, want map[uint64]view) {
		t.Helper()
		for seq, w := range want {
			r, ok := got[seq]
			if !ok {
				t.Errorf("%s: seq %d not read", who, seq)
				continue
			}
			if (view{r.Body, r.Edited, r.Recalled}) != w {
				t.Errorf("%s: seq %d is %q edited=%v recalled=%v, want %+v", who, seq, r.Body, r.Edited, r.Recalled, w)
			}
		}
	}
	check("bob", read("bob", 0, 100), map[uint64]view{2: {"one!!", true, false}, 3: {"", false, true},
		4: {"one!", false, false}, 7: {"", false, true}, 8: {"", false, false}, 9: {"nine", false, false}})
	check("carol, who left at 5", read("carol", 0, 100), map[uint64]view{2: {"one!", true, false}, 3: {"two", false, false}})
	// A page of one entry still finds revisions past it.
	check("bob, one entry", read("bob", 1, 1), map[uint64]view{2: {"one!!", true, false}})
	check("bob, the edit alone", read("bob", 6, 1), map[uint64]view{7: {"", false, true}})
}
