package client

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func seqs(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// Every arrival order of 1..n, with repeats, hands on 1..n once, in order.
func TestReorderHandsOnEachSeqOnceInOrder(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 1 + rng.IntN(30)
		var arrivals []uint64
		for s := 1; s <= n; s++ {
			arrivals = append(arrivals, uint64(s))
			if rng.IntN(4) == 0 {
				arrivals = append(arrivals, uint64(s)) // a repeat
			}
		}
		rng.Shuffle(len(arrivals), func(i, j int) { arrivals[i], arrivals[j] = arrivals[j], arrivals[i] })
		r := newReorder(0)
		var got []uint64
		for _, s := range arrivals {
			got = append(got, seqs(r.add(Entry{Seq: s}, false))...)
		}
		want := make([]uint64, n)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: arrivals %v handed on %v", seed, arrivals, got)
		}
	}
}

func TestReorderGapsStartsAndSkips(t *testing.T) {
	r := newReorder(4)
	if got := r.add(Entry{Seq: 7}, false); len(got) != 0 {
		t.Fatalf("7 after 4 handed on %v", seqs(got))
	}
	if after, limit, ok := r.gap(); !ok || after != 4 || limit != 2 {
		t.Fatalf("gap = %d, %d, %v; want after 4, 2 missing", after, limit, ok)
	}
	// The gateway's synced up to 6: 5 and 6 are not the user's.
	if got := r.skipTo(6); fmt.Sprint(seqs(got)) != "[7]" {
		t.Fatalf("skip to 6 handed on %v, want [7]", seqs(got))
	}
	if _, _, ok := r.gap(); ok {
		t.Fatal("a gap is left after the skip")
	}
	// The user's own join at 12 starts its view again past the hole.
	if got := r.add(Entry{Seq: 12}, true); fmt.Sprint(seqs(got)) != "[12]" {
		t.Fatalf("the join at 12 handed on %v", seqs(got))
	}
	if got := r.add(Entry{Seq: 9}, false); len(got) != 0 {
		t.Fatalf("9, before the join, handed on %v", seqs(got))
	}
}
