package history_test

import (
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
)

func TestPeriodsOf(t *testing.T) {
	const open = history.Open
	for _, tc := range []struct {
		name    string
		changes []history.Change
		want    []history.Period
	}{
		{"never a member", nil, nil},
		{"creator", []history.Change{{1, history.KindCreated}}, []history.Period{{1, open}}},
		{"joined at k sees from k", []history.Change{{7, history.KindJoined}}, []history.Period{{7, open}}},
		{"left at m sees up to m", []history.Change{{3, history.KindJoined}, {5, history.KindLeft}}, []history.Period{{3, 5}}},
		{"kicked", []history.Change{{1, history.KindCreated}, {9, history.KindKicked}}, []history.Period{{1, 9}}},
		{"rejoined", []history.Change{{3, history.KindJoined}, {5, history.KindLeft}, {7, history.KindJoined}},
			[]history.Period{{3, 5}, {7, open}}},
		{"out of order and repeated", []history.Change{{7, history.KindJoined}, {3, history.KindJoined}, {5, history.KindLeft},
			{3, history.KindJoined}, {5, history.KindLeft}}, []history.Period{{3, 5}, {7, open}}},
		{"a leave without a join", []history.Change{{4, history.KindLeft}, {6, history.KindJoined}}, []history.Period{{6, open}}},
		{"a join while a member", []history.Change{{1, history.KindCreated}, {4, history.KindJoined}, {6, history.KindLeft}},
			[]history.Period{{1, 6}}},
		{"messages are no change", []history.Change{{2, history.KindMessage}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := history.PeriodsOf(tc.changes); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("PeriodsOf(%v) = %v, want %v", tc.changes, got, tc.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	periods := []history.Period{{3, 5}, {7, 9}, {12, history.Open}}
	for _, tc := range []struct {
		after, upTo uint64
		want        []history.Period
	}{
		{0, 100, []history.Period{{3, 5}, {7, 9}, {12, 100}}},
		{4, 100, []history.Period{{5, 5}, {7, 9}, {12, 100}}},
		{5, 100, []history.Period{{7, 9}, {12, 100}}},
		{0, 8, []history.Period{{3, 5}, {7, 8}}},
		{0, 11, []history.Period{{3, 5}, {7, 9}}},
		{9, 11, nil},
		{0, 0, nil},
		{history.Open, history.Open, nil},
	} {
		if got := history.Clip(periods, tc.after, tc.upTo); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Clip(%v, %d, %d) = %v, want %v", periods, tc.after, tc.upTo, got, tc.want)
		}
	}
}

// TestPeriodsKeepI4 checks the periods against the rule they implement,
// seq by seq: a member who left at k sees k and nothing after it until it
// joins again; one who joined at k sees k.
func TestPeriodsKeepI4(t *testing.T) {
	changes := []history.Change{{2, history.KindJoined}, {4, history.KindLeft}, {6, history.KindJoined}, {8, history.KindKicked}, {10, history.KindJoined}}
	periods := history.PeriodsOf(changes)
	visible := map[uint64]bool{2: true, 3: true, 4: true, 6: true, 7: true, 8: true, 10: true, 11: true, 12: true}
	for seq := uint64(1); seq <= 12; seq++ {
		if got := history.Contains(periods, seq); got != visible[seq] {
			t.Errorf("seq %d visible = %v, want %v (periods %v)", seq, got, visible[seq], periods)
		}
	}
}
