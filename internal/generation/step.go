package generation

import (
	"fmt"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Step is what a repartition does next.
type Step int

// The steps, in the order a repartition takes them. Each is idempotent:
// done twice, it changes nothing the second time.
const (
	// CreateTopics creates the new generation's topics.
	CreateTopics Step = iota + 1
	// PublishPrepared adds the new generation to the control record.
	PublishPrepared
	// AwaitInstances waits until the new generation's sequencer and fanout
	// groups hold every partition (they import, then wait).
	AwaitInstances
	// PublishWriting switches ingest to the new generation's raw topic.
	PublishWriting
	// WriteFences writes a fence to every old raw partition without a
	// committed one.
	WriteFences
	// AwaitImports waits for every fence and every import.
	AwaitImports
	// PublishImported records that the new generation alone sequences.
	PublishImported
	// AwaitDrain waits until the old generation is drained.
	AwaitDrain
	// PublishRetired stops the old generation's readers.
	PublishRetired
	// Done: nothing left.
	Done
)

var stepNames = map[Step]string{
	CreateTopics: "create topics", PublishPrepared: "publish prepared", AwaitInstances: "await instances",
	PublishWriting: "publish writing", WriteFences: "write fences", AwaitImports: "await imports",
	PublishImported: "publish imported", AwaitDrain: "await drain", PublishRetired: "publish retired", Done: "done",
}

func (s Step) String() string {
	if n, ok := stepNames[s]; ok {
		return n
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// Observed is what the broker shows of a repartition, gathered by imctl
// before each decision.
type Observed struct {
	TopicsExist bool // the new generation's raw, sequenced and state topics exist with its count
	// InstancesReady: the new generation's sequencer and fanout groups
	// each hold every partition.
	InstancesReady bool
	// FencesSent: this run wrote the fences already (a new run writes them
	// again to the partitions without a committed fence: harmless).
	FencesSent      bool
	FencesCommitted int32 // old raw partitions whose fence state entry is committed
	SequencerImport int32 // new state partitions holding their import entry
	FanoutImport    int32 // new fanout member partitions holding their import entry
	Drained         bool  // the old generation is drained (docs: Retire)
}

// Next decides the step of change c given the control record g and what
// is observed. c comes from Begin on the same record.
func Next(g *imv1.Generations, c Change, o Observed) (Step, error) {
	if c.From == nil || c.To == nil {
		return 0, fmt.Errorf("%w: no repartition", ErrBadRecord)
	}
	var from, to *imv1.Generation
	for _, gen := range g.GetGenerations() {
		switch gen.Id {
		case c.From.Id:
			from = gen
		case c.To.Id:
			to = gen
		}
	}
	if from == nil {
		return 0, fmt.Errorf("%w: generation %d missing", ErrBadRecord, c.From.Id)
	}
	if !o.TopicsExist {
		if to != nil && to.Phase >= Imported {
			return 0, fmt.Errorf("the topics of generation %d are missing although it sequences", c.To.Id)
		}
		return CreateTopics, nil
	}
	if to == nil {
		return PublishPrepared, nil
	}
	switch to.Phase {
	case Prepared:
		if !o.InstancesReady {
			return AwaitInstances, nil
		}
		return PublishWriting, nil
	case Writing:
		switch {
		case o.FencesCommitted < from.Partitions && !o.FencesSent:
			return WriteFences, nil
		case o.FencesCommitted < from.Partitions || o.SequencerImport < to.Partitions || o.FanoutImport < to.Partitions:
			return AwaitImports, nil
		}
		return PublishImported, nil
	case Imported:
		switch {
		case from.Phase >= Retired:
			return Done, nil
		case !o.Drained:
			return AwaitDrain, nil
		}
		return PublishRetired, nil
	}
	return 0, fmt.Errorf("%w: generation %d in phase %v", ErrBadRecord, to.Id, to.Phase)
}
