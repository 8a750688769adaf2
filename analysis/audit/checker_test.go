package audit

import (
	"reflect"
	"strings"
	"testing"
)

// TestCheckerRefusesRowsOutOfOrder: every finding depends on the scan's
// order, so a row out of order must stop the audit instead of producing a
// wrong report.
func TestCheckerRefusesRowsOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []row
		want string
	}{
		{"conversation goes back", []row{{conv: "b", seq: 1}, {conv: "a", seq: 1}}, `conversation "a" after "b"`},
		{"seq goes back", []row{{conv: "a", seq: 2}, {conv: "a", seq: 1}}, "seq 1 after 2"},
		{"identity goes back", []row{{conv: "a", seq: 1, identity: 9}, {conv: "a", seq: 1, identity: 3}}, "at seq 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{maxDetails: 10, done: func(*ConversationReport, []uint64) {}}
			var err error
			for _, r := range tc.rows {
				if err = c.add(r); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestCheckerCountsEachIdentityOnce: a seq with copies of three different
// entries is one conflicting seq, and only the copies beyond the first of
// each entry await a merge.
func TestCheckerCountsEachIdentityOnce(t *testing.T) {
	var got []ConversationReport
	var conflicts [][]uint64
	c := &checker{maxDetails: 10, done: func(r *ConversationReport, seqs []uint64) {
		got = append(got, *r)
		conflicts = append(conflicts, seqs)
	}}
	for _, r := range []row{
		{conv: "a", seq: 1, identity: 1, sequencedAtMs: 10},
		{conv: "a", seq: 2, identity: 5, sequencedAtMs: 30},
		{conv: "a", seq: 2, identity: 5, sequencedAtMs: 30},
		{conv: "a", seq: 2, identity: 6, sequencedAtMs: 20}, // the earliest row of seq 2 counts: not a regression
		{conv: "a", seq: 2, identity: 7, sequencedAtMs: 40},
		{conv: "b", seq: 1, identity: 1, sequencedAtMs: 5},
	} {
		if err := c.add(r); err != nil {
			t.Fatal(err)
		}
	}
	c.flush()
	want := []ConversationReport{
		{ConversationID: "a", MaxSeq: 2, Entries: 2, Rows: 5, PendingDuplicates: 1, ConflictingSeqs: 1},
		{ConversationID: "b", MaxSeq: 1, Entries: 1, Rows: 1},
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(conflicts, [][]uint64{{2}, nil}) {
		t.Errorf("got %+v, conflicting seqs %v\nwant %+v, [[2] []]", got, conflicts, want)
	}
}
