package generation

import (
	"fmt"
	"slices"
	"testing"

	"github.com/seqchat/seqchat/internal/kafkawire"
)

func TestTopicsOfAGeneration(t *testing.T) {
	first := Topics(kafkawire.Topics{}, First)
	if first != (kafkawire.Topics{}).WithDefaults() {
		t.Fatalf("generation 1 renamed topics: %+v", first)
	}
	g3 := Topics(kafkawire.PrefixedTopics("t"), 3)
	want := kafkawire.PrefixedTopics("t").WithDefaults()
	want.Raw, want.Sequenced, want.SequencerState, want.FanoutMembers = "t.raw.g3", "t.seq.g3", "t.state.g3", "t.fanout.g3"
	if g3 != want {
		t.Fatalf("generation 3: %+v, want %+v", g3, want)
	}
	if got := GroupID("seqchat-sequencer", 1); got != "seqchat-sequencer" {
		t.Fatalf("group of generation 1: %s", got)
	}
	if got := GroupID("seqchat-sequencer", 2); got != "seqchat-sequencer.g2" {
		t.Fatalf("group of generation 2: %s", got)
	}
}

func TestSources(t *testing.T) {
	for _, tc := range []struct {
		q, n, m int32
		want    []int32
	}{
		{5, 4, 8, []int32{1}},
		{0, 4, 8, []int32{0}},
		{1, 8, 4, []int32{1, 5}},
		{0, 8, 2, []int32{0, 2, 4, 6}},
		{0, 3, 4, []int32{0, 1, 2}},
		{3, 4, 4, []int32{3}},
		{8, 4, 8, nil},
		{0, 0, 8, nil},
	} {
		t.Run(fmt.Sprintf("%d_of_%d_from_%d", tc.q, tc.m, tc.n), func(t *testing.T) {
			if got := Sources(tc.q, tc.n, tc.m); !slices.Equal(got, tc.want) {
				t.Fatalf("Sources = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSourcesHoldEveryConversation checks the arithmetic behind Sources
// against the partitioner itself: every conversation that lands on q
// after a repartition was on one of q's sources before.
func TestSourcesHoldEveryConversation(t *testing.T) {
	for _, nm := range [][2]int32{{4, 8}, {8, 4}, {3, 7}, {8, 16}, {16, 2}, {6, 4}, {1, 5}, {5, 1}} {
		n, m := nm[0], nm[1]
		for i := range 5000 {
			key := []byte(fmt.Sprintf("g:conv-%d", i))
			q := int32(kafkawire.PartitionFor(key, int(m)))
			p := int32(kafkawire.PartitionFor(key, int(n)))
			if !slices.Contains(Sources(q, n, m), p) {
				t.Fatalf("%d -> %d: %s moves from %d to %d, not among Sources %v", n, m, key, p, q, Sources(q, n, m))
			}
		}
	}
}
