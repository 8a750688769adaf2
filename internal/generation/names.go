package generation

import (
	"fmt"
	"slices"

	"github.com/seqchat/seqchat/internal/kafkawire"
)

// First is the generation of a deployment that was never repartitioned:
// its topics and groups keep their plain names.
const First uint32 = 1

// MaxPartitions bounds a repartition's target: far above any deployment
// we know, low enough that a typo (80000 for 8) is refused.
const MaxPartitions = 4096

// ControlTopic is the default name of the control topic (compacted, one
// partition) and ControlKey the key of its one record.
const (
	ControlTopic = "im.control"
	ControlKey   = "generations"
)

// suffix is what generation g appends to a name: nothing for the first.
func suffix(g uint32) string {
	if g <= First {
		return ""
	}
	return fmt.Sprintf(".g%d", g)
}

// Topics returns base with the partitioned topics of generation g: the raw,
// sequenced, sequencer state and fanout member topics get ".g<g>" (none
// for generation 1); presence, dead letters, heads and the gateways'
// topics are shared by every generation and keep their names.
func Topics(base kafkawire.Topics, g uint32) kafkawire.Topics {
	t := base.WithDefaults()
	s := suffix(g)
	t.Raw += s
	t.Sequenced += s
	t.SequencerState += s
	t.FanoutMembers += s
	return t
}

// GroupID is the consumer group (and the sequencer's transactional id
// prefix) of a component in generation g: base for generation 1, base +
// ".g<g>" after, so no instance of one generation fences another's.
func GroupID(base string, g uint32) string { return base + suffix(g) }

// Sources lists the partitions of an older generation of n partitions
// that hold conversations which partition q of a generation of m
// partitions owns. A conversation with key hash h is on h mod n before and
// h mod m after; when n divides m, h mod m mod n = h mod n, so q's
// conversations all come from q mod n; when m divides n, they come from
// q, q+m, q+2m, ...; otherwise from any partition.
func Sources(q, n, m int32) []int32 {
	switch {
	case n <= 0 || m <= 0 || q < 0 || q >= m:
		return nil
	case m%n == 0:
		return []int32{q % n}
	case n%m == 0:
		out := make([]int32, 0, n/m)
		for p := q; p < n; p += m {
			out = append(out, p)
		}
		return out
	}
	out := make([]int32, n)
	for p := range out {
		out[p] = int32(p)
	}
	return out
}

// FenceKey is the key of a fence record (imv1.GenerationFence), which imctl
// writes to every partition of the older generation's raw topic, and of the
// state entry (imv1.FenceEntry) that commits it in the older generation's
// state partition. ImportedKey is the key of the state entry
// (imv1.ImportEntry) that commits a newer generation's partition's import;
// the fanout's member partitions use it likewise. Both sort apart from
// every conversation id.
const (
	FenceKey    = "\x00fence"
	ImportedKey = "\x00imported"
)

// Specs are the partitioned topics of generation g with its count: raw,
// sequenced, sequencer state, fanout members (kafkawire.CoreSpecs'
// settings); the shared topics are not among them.
func Specs(base kafkawire.Topics, layout kafkawire.Layout, g uint32, partitions int32) []kafkawire.TopicSpec {
	t := Topics(base, g)
	layout.Partitions = partitions
	want := []string{t.Raw, t.Sequenced, t.SequencerState, t.FanoutMembers}
	var out []kafkawire.TopicSpec
	for _, s := range kafkawire.CoreSpecs(t, layout) {
		if slices.Contains(want, s.Name) {
			out = append(out, s)
		}
	}
	return out
}
