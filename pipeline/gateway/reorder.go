package gateway

import (
	"sort"
	"time"
)

// Entry is one sequenced entry of a conversation as the gateway delivers it.
type Entry struct {
	Seq     uint64
	Epoch   uint64 // of the conversation's stream Seq belongs to
	Payload []byte // the encoded `msg` frame, shared by every recipient
	// RoutedAt is when the fanout routed a live entry (its gateway
	// record's timestamp), ReceivedAt when ingest received it; both zero
	// for an entry from history.
	RoutedAt, ReceivedAt time.Time
	// Sender and ClientMsgID name the send it came from: delivered to the
	// sending device, it ends that send's flight (admission).
	Sender      deviceKey
	ClientMsgID string
	// Membership is a membership event's kind and users; nil for a message.
	Membership *eventBody
}

// Gap is a run of missing seqs [From, To] that entries after it wait for.
type Gap struct {
	From, To uint64
	Since    time.Time // when the first entry after the gap arrived
}

// Reorder delivers one conversation's entries to one device exactly once
// and in seq order. Entries ahead of the next expected seq are held until
// the hole before them is filled (from history); entries at or below the
// delivered position are duplicates and dropped. Not safe for concurrent
// use: one connection goroutine owns it.
type Reorder struct {
	next     uint64 // the next seq to deliver
	held     map[uint64]Entry
	maxHeld  int
	gapSince time.Time
}

// NewReorder starts after delivered (the device's acknowledged position;
// 0 for a new conversation). maxHeld bounds the entries held (zero means
// 1024); past it Offer reports overflow and the caller resyncs from history.
func NewReorder(delivered uint64, maxHeld int) *Reorder {
	if maxHeld <= 0 {
		maxHeld = 1024
	}
	return &Reorder{next: delivered + 1, held: map[uint64]Entry{}, maxHeld: maxHeld}
}

// Delivered is the last seq delivered.
func (r *Reorder) Delivered() uint64 { return r.next - 1 }

// Held is the number of entries waiting for a hole to be filled.
func (r *Reorder) Held() int { return len(r.held) }

// Offer takes one entry arriving at now and returns the entries that are now
// deliverable, in order. overflow is true when the entry could not be held
// (the buffer is full): it was dropped and must come again from history.
func (r *Reorder) Offer(e Entry, now time.Time) (ready []Entry, overflow bool) {
	switch {
	case e.Seq < r.next:
		return nil, false // already delivered
	case e.Seq > r.next:
		if _, dup := r.held[e.Seq]; dup {
			return nil, false
		}
		if len(r.held) >= r.maxHeld {
			return nil, true
		}
		if len(r.held) == 0 {
			r.gapSince = now
		}
		r.held[e.Seq] = e
		return nil, false
	}
	ready = append(ready, e)
	r.next++
	for {
		h, ok := r.held[r.next]
		if !ok {
			break
		}
		delete(r.held, r.next)
		ready = append(ready, h)
		r.next++
	}
	if len(r.held) > 0 {
		r.gapSince = now // a new hole opens behind what was just released
	}
	return ready, false
}

// Gap is the first hole (from the next expected seq to just before the
// lowest held entry) and since when entries wait behind it; ok is false
// when nothing is held.
func (r *Reorder) Gap() (g Gap, ok bool) {
	if len(r.held) == 0 {
		return Gap{}, false
	}
	lowest := uint64(0)
	for s := range r.held {
		if lowest == 0 || s < lowest {
			lowest = s
		}
	}
	return Gap{From: r.next, To: lowest - 1, Since: r.gapSince}, true
}

// HeldSeqs lists the held seqs in order (for diagnostics and tests).
func (r *Reorder) HeldSeqs() []uint64 {
	out := make([]uint64, 0, len(r.held))
	for s := range r.held {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SkipTo moves past every seq up to seq that is not held: history says
// they are not for this device (from periods when the user was not a
// member). Held entries up to seq were routed to the device, so they are
// delivered, in order, not dropped. It returns what became deliverable.
func (r *Reorder) SkipTo(seq uint64) []Entry {
	if seq < r.next {
		return nil
	}
	var ready []Entry
	for _, s := range r.HeldSeqs() {
		if s > seq {
			break
		}
		ready = append(ready, r.held[s])
		delete(r.held, s)
	}
	r.next = seq + 1
	for {
		h, ok := r.held[r.next]
		if !ok {
			break
		}
		delete(r.held, r.next)
		ready = append(ready, h)
		r.next++
	}
	return ready
}
