package generation

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Phases, shorter to read.
const (
	Prepared = imv1.GenerationPhase_GENERATION_PHASE_PREPARED
	Writing  = imv1.GenerationPhase_GENERATION_PHASE_WRITING
	Imported = imv1.GenerationPhase_GENERATION_PHASE_IMPORTED
	Retired  = imv1.GenerationPhase_GENERATION_PHASE_RETIRED
	Deleted  = imv1.GenerationPhase_GENERATION_PHASE_DELETED
)

// ErrInProgress means a repartition to another count is not finished.
var ErrInProgress = errors.New("another repartition is in progress")

// ErrBadRecord means the control record breaks its own rules.
var ErrBadRecord = errors.New("invalid control record")

// Initial is the control record of a deployment that was never
// repartitioned: generation 1 with the raw topic's partition count, the
// only one, sequencing.
func Initial(partitions int32) *imv1.Generations {
	return &imv1.Generations{Version: imv1.Version, Generations: []*imv1.Generation{{Id: First, Partitions: partitions, Phase: Imported}}}
}

// Decode reads a control record and checks it (Check).
func Decode(b []byte) (*imv1.Generations, error) {
	g := &imv1.Generations{}
	if err := imv1.Unmarshal(b, g); err != nil {
		return nil, err
	}
	if err := Check(g); err != nil {
		return nil, err
	}
	return g, nil
}

// Encode checks a control record and encodes it.
func Encode(g *imv1.Generations) ([]byte, error) {
	if err := Check(g); err != nil {
		return nil, err
	}
	return imv1.Marshal(g)
}

// Check enforces what every reader relies on: generations in increasing
// id order from 1 without holes, each with a valid count and a phase; the
// first is more than prepared; only the newest may be merely prepared; a
// retired (or deleted) one is followed by one that imported or later;
// deleted ones are the oldest; only the two newest may be live, and one
// is.
func Check(g *imv1.Generations) error {
	gens := g.GetGenerations()
	if len(gens) == 0 {
		return fmt.Errorf("%w: no generation", ErrBadRecord)
	}
	live := 0
	for i, gen := range gens {
		switch {
		case gen.Id != First+uint32(i):
			return fmt.Errorf("%w: generation %d at position %d", ErrBadRecord, gen.Id, i)
		case gen.Partitions < 1 || gen.Partitions > MaxPartitions:
			return fmt.Errorf("%w: generation %d has %d partitions", ErrBadRecord, gen.Id, gen.Partitions)
		case gen.Phase < Prepared || gen.Phase > Deleted:
			return fmt.Errorf("%w: generation %d has phase %v", ErrBadRecord, gen.Id, gen.Phase)
		case gen.Phase == Prepared && i != len(gens)-1:
			return fmt.Errorf("%w: generation %d is prepared but not the newest", ErrBadRecord, gen.Id)
		case i == 0 && gen.Phase == Prepared:
			return fmt.Errorf("%w: the first generation is only prepared", ErrBadRecord)
		case gen.Phase >= Retired && (i == len(gens)-1 || gens[i+1].Phase < Imported):
			return fmt.Errorf("%w: generation %d is retired before its successor imported", ErrBadRecord, gen.Id)
		case gen.Phase == Deleted && i > 0 && gens[i-1].Phase != Deleted:
			return fmt.Errorf("%w: generation %d is deleted before generation %d", ErrBadRecord, gen.Id, gens[i-1].Id)
		case gen.Phase < Retired && i < len(gens)-2:
			return fmt.Errorf("%w: generation %d is not retired but two newer ones exist", ErrBadRecord, gen.Id)
		}
		if gen.Phase < Retired {
			live++
		}
	}
	if live == 0 {
		return fmt.Errorf("%w: every generation is retired", ErrBadRecord)
	}
	return nil
}

// Live returns the generations not retired, oldest first: the ones whose
// sequenced topics readers (fanout, history, gateways) consume.
func Live(g *imv1.Generations) []*imv1.Generation {
	var out []*imv1.Generation
	for _, gen := range g.GetGenerations() {
		if gen.Phase < Retired {
			out = append(out, gen)
		}
	}
	return out
}

// WriteTo is the generation ingest produces to: the newest one writing or
// further.
func WriteTo(g *imv1.Generations) *imv1.Generation {
	gens := g.GetGenerations()
	for i := len(gens) - 1; i >= 0; i-- {
		if gens[i].Phase >= Writing {
			return gens[i]
		}
	}
	return nil
}

// Change is one repartition: from the generation that sequences to the one
// that takes over.
type Change struct {
	From, To *imv1.Generation
}

// Begin decides what `imctl repartition -partitions m` works on: the
// repartition in progress if it goes to m; a new generation (not yet in
// the record: To has no phase) if none is in progress and the write
// generation has another count. done: the deployment already has m
// partitions and nothing is in progress. A repartition in progress to
// another count is ErrInProgress.
func Begin(g *imv1.Generations, m int32) (c Change, done bool, err error) {
	if m < 1 || m > MaxPartitions {
		return Change{}, false, fmt.Errorf("partitions must be between 1 and %d, not %d", MaxPartitions, m)
	}
	if err := Check(g); err != nil {
		return Change{}, false, err
	}
	if c, ok := InProgress(g); ok {
		if c.To.Partitions != m {
			return Change{}, false, fmt.Errorf("%w: to %d partitions (generation %d); finish it with -partitions %d first",
				ErrInProgress, c.To.Partitions, c.To.Id, c.To.Partitions)
		}
		return c, false, nil
	}
	gens := g.GetGenerations()
	newest := gens[len(gens)-1]
	if newest.Partitions == m {
		return Change{}, true, nil
	}
	return Change{From: newest, To: &imv1.Generation{Id: newest.Id + 1, Partitions: m}}, false, nil
}

// InProgress returns the repartition not finished yet: the newest
// generation is prepared or writing, or the one before it is not retired.
func InProgress(g *imv1.Generations) (Change, bool) {
	gens := g.GetGenerations()
	if len(gens) < 2 {
		return Change{}, false
	}
	from, to := gens[len(gens)-2], gens[len(gens)-1]
	if to.Phase == Imported && from.Phase >= Retired {
		return Change{}, false
	}
	return Change{From: from, To: to}, true
}

// WithPhase returns a copy of g in which generation id (appended if it is
// the next one) has the phase, set at atMs. The result is checked.
func WithPhase(g *imv1.Generations, gen *imv1.Generation, phase imv1.GenerationPhase, atMs int64) (*imv1.Generations, error) {
	out := proto.Clone(g).(*imv1.Generations)
	i := slices.IndexFunc(out.Generations, func(x *imv1.Generation) bool { return x.Id == gen.Id })
	switch {
	case i < 0 && gen.Id == uint32(len(out.Generations))+First:
		out.Generations = append(out.Generations, &imv1.Generation{Id: gen.Id, Partitions: gen.Partitions})
		i = len(out.Generations) - 1
	case i < 0:
		return nil, fmt.Errorf("%w: generation %d is neither in the record nor the next one", ErrBadRecord, gen.Id)
	case out.Generations[i].Partitions != gen.Partitions:
		return nil, fmt.Errorf("%w: generation %d has %d partitions, not %d", ErrBadRecord, gen.Id, out.Generations[i].Partitions, gen.Partitions)
	}
	if phase < out.Generations[i].Phase {
		return nil, fmt.Errorf("%w: generation %d cannot go back from %v to %v", ErrBadRecord, gen.Id, out.Generations[i].Phase, phase)
	}
	out.Generations[i].Phase, out.Generations[i].ChangedAtMs = phase, atMs
	if err := Check(out); err != nil {
		return nil, err
	}
	return out, nil
}

// WithFenceOffsets returns a copy of g in which generation gen records
// where the fences into its predecessor's raw topic were written, one
// offset per partition of the predecessor. The result is checked.
func WithFenceOffsets(g *imv1.Generations, gen *imv1.Generation, offsets []int64) (*imv1.Generations, error) {
	out := proto.Clone(g).(*imv1.Generations)
	i := slices.IndexFunc(out.Generations, func(x *imv1.Generation) bool { return x.Id == gen.Id })
	if i < 1 {
		return nil, fmt.Errorf("%w: generation %d has no predecessor in the record", ErrBadRecord, gen.Id)
	}
	if n := out.Generations[i-1].Partitions; int32(len(offsets)) != n {
		return nil, fmt.Errorf("%w: %d fence offsets for the %d partitions of generation %d", ErrBadRecord, len(offsets), n, gen.Id-1)
	}
	out.Generations[i].FenceOffsets = slices.Clone(offsets)
	if err := Check(out); err != nil {
		return nil, err
	}
	return out, nil
}
