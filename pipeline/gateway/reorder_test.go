package gateway

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func seqs(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestReorderDeliversInOrderOnce(t *testing.T) {
	r := NewReorder(0, 0)
	steps := []struct {
		seq  uint64
		want string
	}{
		{1, "[1]"},
		{3, "[]"},
		{5, "[]"},
		{3, "[]"}, // duplicate of a held one
		{1, "[]"}, // duplicate of a delivered one
		{2, "[2 3]"},
		{4, "[4 5]"},
		{6, "[6]"},
	}
	for i, s := range steps {
		got, overflow := r.Offer(Entry{Seq: s.seq}, t0)
		if overflow || fmt.Sprint(seqs(got)) != s.want {
			t.Fatalf("step %d: Offer(%d) = %v overflow=%v, want %s", i, s.seq, seqs(got), overflow, s.want)
		}
	}
	if r.Delivered() != 6 || r.Held() != 0 {
		t.Fatalf("Delivered=%d Held=%d, want 6, 0", r.Delivered(), r.Held())
	}
}

func TestReorderResumesAfterAcknowledgedPosition(t *testing.T) {
	r := NewReorder(41, 0)
	if got, _ := r.Offer(Entry{Seq: 41}, t0); len(got) != 0 {
		t.Fatalf("re-delivered acknowledged seq 41")
	}
	if got, _ := r.Offer(Entry{Seq: 42}, t0); fmt.Sprint(seqs(got)) != "[42]" {
		t.Fatalf("Offer(42) = %v", seqs(got))
	}
}

func TestReorderReportsGaps(t *testing.T) {
	r := NewReorder(0, 0)
	if _, ok := r.Gap(); ok {
		t.Fatal("gap reported with nothing held")
	}
	r.Offer(Entry{Seq: 4}, t0)
	r.Offer(Entry{Seq: 7}, t0.Add(time.Second))
	g, ok := r.Gap()
	if !ok || g.From != 1 || g.To != 3 || !g.Since.Equal(t0) {
		t.Fatalf("Gap = %+v %v, want 1..3 since t0", g, ok)
	}
	// Filling 1..4 releases up to 4 and opens the next hole, 5..6, now.
	for s := uint64(1); s <= 3; s++ {
		r.Offer(Entry{Seq: s}, t0.Add(2*time.Second))
	}
	g, ok = r.Gap()
	if !ok || g.From != 5 || g.To != 6 || !g.Since.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("Gap = %+v %v, want 5..6 since t0+2s", g, ok)
	}
}

func TestReorderBoundsHeldEntries(t *testing.T) {
	r := NewReorder(0, 2)
	r.Offer(Entry{Seq: 3}, t0)
	r.Offer(Entry{Seq: 4}, t0)
	if _, overflow := r.Offer(Entry{Seq: 5}, t0); !overflow {
		t.Fatal("third held entry accepted with maxHeld 2")
	}
	if r.Held() != 2 {
		t.Fatalf("Held = %d, want 2", r.Held())
	}
	// The overflowed entry comes again later (from history) and is delivered.
	got, _ := r.Offer(Entry{Seq: 1}, t0)
	got2, _ := r.Offer(Entry{Seq: 2}, t0)
	got3, _ := r.Offer(Entry{Seq: 5}, t0)
	if all := fmt.Sprint(seqs(append(append(got, got2...), got3...))); all != "[1 2 3 4 5]" {
		t.Fatalf("delivered %s, want [1 2 3 4 5]", all)
	}
}

// TestReorderRandomArrivals: any arrival order with duplicates delivers
// every seq exactly once, in order.
func TestReorderRandomArrivals(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		n := 1 + rng.Intn(100)
		var arrivals []uint64
		for s := 1; s <= n; s++ {
			arrivals = append(arrivals, uint64(s))
			if rng.Intn(4) == 0 {
				arrivals = append(arrivals, uint64(s)) // duplicate
			}
		}
		rng.Shuffle(len(arrivals), func(i, j int) { arrivals[i], arrivals[j] = arrivals[j], arrivals[i] })
		r := NewReorder(0, n)
		var delivered []uint64
		for _, s := range arrivals {
			got, overflow := r.Offer(Entry{Seq: s}, t0)
			if overflow {
				t.Fatalf("seed %d: overflow with room for all", seed)
			}
			delivered = append(delivered, seqs(got)...)
		}
		if len(delivered) != n {
			t.Fatalf("seed %d: delivered %d entries, want %d", seed, len(delivered), n)
		}
		for i, s := range delivered {
			if s != uint64(i+1) {
				t.Fatalf("seed %d: delivered %v", seed, delivered)
			}
		}
	}
}
