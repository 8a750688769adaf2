package generation

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func gens(gs ...*imv1.Generation) *imv1.Generations {
	return &imv1.Generations{Version: imv1.Version, Generations: gs}
}

func gen(id uint32, partitions int32, phase imv1.GenerationPhase) *imv1.Generation {
	return &imv1.Generation{Id: id, Partitions: partitions, Phase: phase}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    *imv1.Generations
		ok   bool
	}{
		{"initial", Initial(4), true},
		{"prepared", gens(gen(1, 4, Imported), gen(2, 8, Prepared)), true},
		{"writing", gens(gen(1, 4, Imported), gen(2, 8, Writing)), true},
		{"imported, old draining", gens(gen(1, 4, Imported), gen(2, 8, Imported)), true},
		{"done", gens(gen(1, 4, Retired), gen(2, 8, Imported)), true},
		{"second repartition", gens(gen(1, 4, Retired), gen(2, 8, Imported), gen(3, 4, Prepared)), true},
		{"deleted", gens(gen(1, 4, Deleted), gen(2, 8, Imported)), true},
		{"deleted, second repartition", gens(gen(1, 4, Deleted), gen(2, 8, Imported), gen(3, 4, Writing)), true},
		{"deleted, second done", gens(gen(1, 4, Deleted), gen(2, 8, Retired), gen(3, 4, Imported)), true},
		{"both deleted", gens(gen(1, 4, Deleted), gen(2, 8, Deleted), gen(3, 4, Imported)), true},
		{"empty", gens(), false},
		{"starts at 2", gens(gen(2, 4, Imported)), false},
		{"hole", gens(gen(1, 4, Retired), gen(3, 8, Imported)), false},
		{"no partitions", gens(gen(1, 0, Imported)), false},
		{"too many partitions", gens(gen(1, MaxPartitions+1, Imported)), false},
		{"no phase", gens(gen(1, 4, imv1.GenerationPhase_GENERATION_PHASE_UNSPECIFIED)), false},
		{"first only prepared", gens(gen(1, 4, Prepared)), false},
		{"prepared not newest", gens(gen(1, 4, Imported), gen(2, 8, Prepared), gen(3, 4, Prepared)), false},
		{"retired before successor imported", gens(gen(1, 4, Retired), gen(2, 8, Writing)), false},
		{"newest retired", gens(gen(1, 4, Retired)), false},
		{"newest deleted", gens(gen(1, 4, Retired), gen(2, 8, Deleted)), false},
		{"deleted before successor imported", gens(gen(1, 4, Deleted), gen(2, 8, Writing)), false},
		{"deleted before an older one", gens(gen(1, 4, Retired), gen(2, 8, Deleted), gen(3, 4, Imported)), false},
		{"three live", gens(gen(1, 4, Imported), gen(2, 8, Imported), gen(3, 4, Prepared)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.g)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	g := gens(gen(1, 4, Retired), gen(2, 8, Imported))
	g.Generations[1].ChangedAtMs = 1234
	b, err := Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g, back) {
		t.Fatalf("round trip: %v, want %v", back, g)
	}
	if _, err := Encode(gens()); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("Encode of an invalid record: %v", err)
	}
	if _, err := Decode([]byte{0xff, 0xff}); !errors.Is(err, imv1.ErrMalformed) {
		t.Fatalf("Decode of garbage: %v", err)
	}
	bad, _ := imv1.Marshal(gens(gen(2, 4, Imported)))
	if _, err := Decode(bad); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("Decode of an invalid record: %v", err)
	}
}

func TestWriteToAndLive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		g         *imv1.Generations
		writeTo   uint32
		live      int
		inProcess bool
	}{
		{"initial", Initial(4), 1, 1, false},
		{"prepared", gens(gen(1, 4, Imported), gen(2, 8, Prepared)), 1, 2, true},
		{"writing", gens(gen(1, 4, Imported), gen(2, 8, Writing)), 2, 2, true},
		{"draining", gens(gen(1, 4, Imported), gen(2, 8, Imported)), 2, 2, true},
		{"done", gens(gen(1, 4, Retired), gen(2, 8, Imported)), 2, 1, false},
		{"deleted", gens(gen(1, 4, Deleted), gen(2, 8, Imported)), 2, 1, false},
		{"deleted, second writing", gens(gen(1, 4, Deleted), gen(2, 8, Imported), gen(3, 4, Writing)), 3, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WriteTo(tc.g).GetId(); got != tc.writeTo {
				t.Errorf("WriteTo = %d, want %d", got, tc.writeTo)
			}
			if got := len(Live(tc.g)); got != tc.live {
				t.Errorf("Live = %d generations, want %d", got, tc.live)
			}
			if _, got := InProgress(tc.g); got != tc.inProcess {
				t.Errorf("InProgress = %v, want %v", got, tc.inProcess)
			}
		})
	}
}

func TestBegin(t *testing.T) {
	c, done, err := Begin(Initial(4), 8)
	if err != nil || done || c.From.Id != 1 || c.To.Id != 2 || c.To.Partitions != 8 || c.To.Phase != 0 {
		t.Fatalf("Begin from the initial record: %+v %v %v", c, done, err)
	}
	if _, done, err := Begin(Initial(4), 4); err != nil || !done {
		t.Fatalf("Begin to the same count: done=%v err=%v", done, err)
	}
	writing := gens(gen(1, 4, Imported), gen(2, 8, Writing))
	if c, done, err := Begin(writing, 8); err != nil || done || c.To.Id != 2 || c.To.Phase != Writing {
		t.Fatalf("Begin resuming: %+v %v %v", c, done, err)
	}
	if _, _, err := Begin(writing, 16); !errors.Is(err, ErrInProgress) {
		t.Fatalf("Begin to another count while one is in progress: %v", err)
	}
	if _, _, err := Begin(writing, 4); !errors.Is(err, ErrInProgress) {
		t.Fatalf("Begin back to the old count while one is in progress: %v", err)
	}
	for _, old := range []imv1.GenerationPhase{Retired, Deleted} {
		finished := gens(gen(1, 4, old), gen(2, 8, Imported))
		if c, _, err := Begin(finished, 4); err != nil || c.From.Id != 2 || c.To.Id != 3 || c.To.Partitions != 4 {
			t.Fatalf("Begin of a second repartition, the first generation %v: %+v %v", old, c, err)
		}
	}
	for _, m := range []int32{0, -1, MaxPartitions + 1} {
		if _, _, err := Begin(Initial(4), m); err == nil {
			t.Fatalf("Begin to %d partitions: no error", m)
		}
	}
	if _, _, err := Begin(gens(), 8); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("Begin on an invalid record: %v", err)
	}
}

func TestWithPhase(t *testing.T) {
	g := Initial(4)
	next, err := WithPhase(g, &imv1.Generation{Id: 2, Partitions: 8}, Prepared, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Generations) != 1 {
		t.Fatal("WithPhase changed its input")
	}
	if got := next.Generations[1]; got.Id != 2 || got.Phase != Prepared || got.ChangedAtMs != 10 {
		t.Fatalf("appended generation: %v", got)
	}
	for _, tc := range []struct {
		name  string
		gen   *imv1.Generation
		phase imv1.GenerationPhase
	}{
		{"skips an id", &imv1.Generation{Id: 4, Partitions: 8}, Prepared},
		{"other count", &imv1.Generation{Id: 2, Partitions: 16}, Writing},
		{"goes back", &imv1.Generation{Id: 1, Partitions: 4}, Writing},
		{"retires the one that sequences", &imv1.Generation{Id: 1, Partitions: 4}, Retired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := WithPhase(next, tc.gen, tc.phase, 20); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("WithPhase: %v, want ErrBadRecord", err)
			}
		})
	}
}

func TestWithFenceOffsets(t *testing.T) {
	g := gens(gen(1, 4, Imported), gen(2, 8, Writing))
	out, err := WithFenceOffsets(g, g.Generations[1], []int64{5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Generations[1].FenceOffsets; len(got) != 4 || got[3] != 8 || len(g.Generations[1].FenceOffsets) != 0 {
		t.Fatalf("offsets %v (input %v)", got, g.Generations[1].FenceOffsets)
	}
	if _, err := WithFenceOffsets(g, g.Generations[1], []int64{1, 2}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("too few offsets: %v", err)
	}
	if _, err := WithFenceOffsets(g, g.Generations[0], []int64{1}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("offsets for the first generation: %v", err)
	}
}
