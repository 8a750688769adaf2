package generation

import (
	"slices"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// world is a broker as imctl sees it, simulated: the control record, and
// what the services do in reaction to it.
type world struct {
	t      *testing.T
	g      *imv1.Generations
	obs    Observed
	fences bool // fences written, not committed yet
}

// run is one imctl run: it begins, then takes steps until done or until
// it is killed after kill steps. It returns the steps it took.
func (w *world) run(m int32, kill int) []Step {
	w.t.Helper()
	w.obs.FencesSent = false // a new process remembers nothing
	c, done, err := Begin(w.g, m)
	if err != nil {
		w.t.Fatalf("Begin: %v", err)
	}
	if done {
		return []Step{Done}
	}
	var steps []Step
	for len(steps) != kill {
		s, err := Next(w.g, c, w.obs)
		if err != nil {
			w.t.Fatalf("Next after %v: %v", steps, err)
		}
		steps = append(steps, s)
		if s == Done {
			return steps
		}
		w.apply(c, s)
		if len(steps) > 50 {
			w.t.Fatalf("no progress: %v", steps)
		}
	}
	return steps
}

func (w *world) publish(gen *imv1.Generation, phase imv1.GenerationPhase) {
	g, err := WithPhase(w.g, gen, phase, 1)
	if err != nil {
		w.t.Fatalf("publish %v: %v", phase, err)
	}
	w.g = g
}

// apply does the step, and what the services would do meanwhile. Waits
// are where the services act: an await step sees one partition more each
// time.
func (w *world) apply(c Change, s Step) {
	switch s {
	case CreateTopics:
		w.obs.TopicsExist = true
	case PublishPrepared:
		w.publish(c.To, Prepared)
	case AwaitInstances:
		w.obs.InstancesReady = true
	case PublishWriting:
		w.publish(c.To, Writing)
	case WriteFences:
		w.obs.FencesSent, w.fences = true, true
	case AwaitImports:
		switch {
		case w.obs.FencesCommitted < c.From.Partitions && w.fences:
			w.obs.FencesCommitted++
		case w.obs.FencesCommitted == c.From.Partitions && w.obs.SequencerImport < c.To.Partitions:
			w.obs.SequencerImport++
		case w.obs.FencesCommitted == c.From.Partitions && w.obs.FanoutImport < c.To.Partitions:
			w.obs.FanoutImport++
		}
	case PublishImported:
		w.publish(c.To, Imported)
	case AwaitDrain:
		w.obs.Drained = true
	case PublishRetired:
		w.publish(c.From, Retired)
	default:
		w.t.Fatalf("unexpected step %v", s)
	}
}

func TestStepsOfARepartition(t *testing.T) {
	w := &world{t: t, g: Initial(4)}
	steps := slices.Compact(w.run(8, -1))
	want := []Step{CreateTopics, PublishPrepared, AwaitInstances, PublishWriting, WriteFences, AwaitImports,
		PublishImported, AwaitDrain, PublishRetired, Done}
	if !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	if got := WriteTo(w.g); got.Id != 2 || got.Partitions != 8 {
		t.Fatalf("writes to %v", got)
	}
	if again := w.run(8, -1); !slices.Equal(again, []Step{Done}) {
		t.Fatalf("a rerun after the end took %v", again)
	}
	// And back down, as generation 3.
	w.obs = Observed{}
	w.fences = false
	w.run(4, -1)
	if got := WriteTo(w.g); got.Id != 3 || got.Partitions != 4 || len(Live(w.g)) != 1 {
		t.Fatalf("after 8 -> 4: writes to %v, live %v", got, Live(w.g))
	}
}

// TestKilledAnywhereResumes kills the command after every possible number
// of steps and reruns it: it always ends with the same record.
func TestKilledAnywhereResumes(t *testing.T) {
	ref := &world{t: t, g: Initial(4)}
	total := len(ref.run(8, -1))
	for kill := 1; kill < total; kill++ {
		w := &world{t: t, g: Initial(4)}
		w.run(8, kill)
		rest := w.run(8, -1)
		if rest[len(rest)-1] != Done {
			t.Fatalf("killed after %d steps, the rerun ended with %v", kill, rest)
		}
		if got := w.g.String(); got != ref.g.String() {
			t.Fatalf("killed after %d steps: record %s, want %s", kill, got, ref.g)
		}
	}
}

func TestNextRefusesWhatCannotBe(t *testing.T) {
	g := gens(gen(1, 4, Imported), gen(2, 8, Imported))
	c, _, err := Begin(g, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Next(g, c, Observed{}); err == nil {
		t.Fatal("Next with the topics of a sequencing generation missing: no error")
	}
	if _, err := Next(g, Change{}, Observed{}); err == nil {
		t.Fatal("Next without a change: no error")
	}
}
