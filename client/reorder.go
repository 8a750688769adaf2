package client

import "sort"

// reorder hands a conversation's entries on in seq order, each once: an
// entry past a hole waits until the hole is filled (live, or by a sync).
type reorder struct {
	delivered uint64           // the last seq handed on
	held      map[uint64]Entry // past a hole, by seq
}

func newReorder(delivered uint64) *reorder {
	return &reorder{delivered: delivered, held: map[uint64]Entry{}}
}

// add takes an entry and returns what can be handed on now, in order.
// start says the entry begins the user's view of the conversation (its own
// created or joined event): nothing before it will come, so it is taken
// even past a hole.
func (r *reorder) add(e Entry, start bool) []Entry {
	if e.Seq <= r.delivered {
		return nil // a repeat
	}
	if start && e.Seq > r.delivered+1 {
		r.skipTo(e.Seq - 1)
	}
	r.held[e.Seq] = e
	return r.drain()
}

// skipTo moves past seqs the user cannot see (the gateway's synced after a
// catch-up says which), dropping what is held up to there.
func (r *reorder) skipTo(seq uint64) []Entry {
	if seq <= r.delivered {
		return nil
	}
	for s := range r.held {
		if s <= seq {
			delete(r.held, s)
		}
	}
	r.delivered = seq
	return r.drain()
}

func (r *reorder) drain() []Entry {
	var out []Entry
	for {
		e, ok := r.held[r.delivered+1]
		if !ok {
			return out
		}
		delete(r.held, e.Seq)
		r.delivered = e.Seq
		out = append(out, e)
	}
}

// gap is the first hole: the seqs after delivered up to the first held
// entry (ok false when nothing is held).
func (r *reorder) gap() (after, limit uint64, ok bool) {
	if len(r.held) == 0 {
		return 0, 0, false
	}
	seqs := make([]uint64, 0, len(r.held))
	for s := range r.held {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return r.delivered, seqs[0] - r.delivered - 1, true
}
