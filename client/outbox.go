package client

import (
	"math/rand/v2"
	"sort"
	"time"
)

const (
	// unavailableRetry: how soon a send answered `unavailable` without a
	// hint is written again; rateLimitedRetry, one answered `rate_limited`.
	unavailableRetry = 500 * time.Millisecond
	rateLimitedRetry = time.Second
)

// pending is a send from the moment it is made until it ends in its own
// entry, an accepted answer naming its seq, or a rejection.
type pending struct {
	conv      string
	cmid      string
	clientSeq uint64
	frame     []byte
	idx       uint64    // the order it was made in
	retryAt   time.Time // for a send waiting in retry
	awaiting  bool      // written on this connection, not answered yet
}

// outbox keeps the unsettled sends and decides which to write when. A
// conversation's sends are written in the order they were made, and none
// before a refused earlier one (the gateway refuses those: protocol.md,
// "Refused sends and their order"). Not safe for concurrent use.
type outbox struct {
	maxRetry time.Duration
	made     uint64
	sends    map[string]*pending
	fresh    []*pending          // made, not written yet (settled ones are skipped)
	retry    map[string]*pending // refused, or made behind a refused one: written at retryAt
	// lingering are sends that settled (their entry came: they had been
	// accepted on an earlier connection) while this connection still owed
	// them an answer. If it refuses one, it is written again all the same:
	// the gateway refuses the conversation's later sends until it is.
	lingering map[string]*pending
	// gate holds a conversation's sends back until its refused one may go
	// again; rounds counts its refusals in a row, and the wait grows with them.
	gate   map[string]time.Time
	rounds map[string]int
}

func newOutbox(maxRetry time.Duration) *outbox {
	return &outbox{maxRetry: maxRetry, sends: map[string]*pending{}, retry: map[string]*pending{}, lingering: map[string]*pending{},
		gate: map[string]time.Time{}, rounds: map[string]int{}}
}

func (o *outbox) add(p *pending, now time.Time) {
	if o.sends[p.cmid] != nil {
		return
	}
	o.made++
	p.idx = o.made
	o.sends[p.cmid] = p
	if g := o.gate[p.conv]; now.Before(g) {
		p.retryAt = g
		o.retry[p.cmid] = p
		return
	}
	o.fresh = append(o.fresh, p)
}

// due returns the sends to write now, in the order they were made: new
// ones, and refused ones whose time came; on a new connection (all), every
// unsettled one.
func (o *outbox) due(now time.Time, all bool) []*pending {
	var out []*pending
	if all {
		for _, p := range o.sends {
			out = append(out, p)
		}
		clear(o.retry)
		clear(o.lingering) // a new connection owes them nothing
	} else {
		for cmid, p := range o.retry {
			if !now.Before(p.retryAt) && !now.Before(o.gate[p.conv]) {
				out = append(out, p)
				delete(o.retry, cmid)
			}
		}
		for _, p := range o.fresh {
			switch {
			case o.sends[p.cmid] != p:
				// settled meanwhile
			case now.Before(o.gate[p.conv]): // an earlier one was refused: after it
				p.retryAt = o.gate[p.conv]
				o.retry[p.cmid] = p
			default:
				out = append(out, p)
			}
		}
	}
	o.fresh = o.fresh[:0]
	sort.Slice(out, func(i, j int) bool { return out[i].idx < out[j].idx })
	for _, p := range out {
		p.awaiting = true
	}
	return out
}

// next is when the earliest waiting send may go (zero if none waits).
func (o *outbox) next() time.Time {
	var t time.Time
	for _, p := range o.retry {
		if at := later(p.retryAt, o.gate[p.conv]); t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// settle ends a send; false if it was not pending. One the connection
// still owes an answer, or refused and waiting to go again, lingers (see
// lingering).
func (o *outbox) settle(cmid string) bool {
	p := o.sends[cmid]
	if p == nil {
		return false
	}
	delete(o.sends, cmid)
	delete(o.rounds, p.conv)
	if _, waiting := o.retry[cmid]; waiting || p.awaiting {
		o.lingering[cmid] = p
	}
	return true
}

// answered notes the connection's answer to a send (accepted, rejected,
// an error): nothing more is owed for it.
func (o *outbox) answered(cmid string) {
	if p := o.sends[cmid]; p != nil {
		p.awaiting = false
	}
	delete(o.lingering, cmid)
}

// accepted notes the broker took the send: its conversation is moving.
func (o *outbox) accepted(cmid string) {
	o.answered(cmid)
	if p := o.sends[cmid]; p != nil {
		delete(o.rounds, p.conv)
	}
}

// refused schedules a refused send (`unavailable`, `rate_limited`) and
// holds its conversation's later sends behind it; false if not pending.
func (o *outbox) refused(cmid, code string, hint time.Duration, now time.Time) bool {
	p := o.sends[cmid]
	if p == nil {
		p = o.lingering[cmid]
	}
	if p == nil {
		return false
	}
	p.awaiting = false
	o.retry[cmid] = p
	if g := o.gate[p.conv]; now.Before(g) {
		// Refused behind an earlier refused send of its conversation: it
		// goes again with that one and adds no backoff of its own.
		p.retryAt = g
		return true
	}
	wait := unavailableRetry
	if code == "rate_limited" {
		wait = rateLimitedRetry
	}
	if hint > 0 {
		wait = hint
	}
	// Refused again and again: back off further than the hint, spread by
	// up to half so refused clients do not all come back together.
	o.rounds[p.conv]++
	wait = min(max(wait, unavailableRetry<<min(o.rounds[p.conv]-1, 4)), o.maxRetry)
	wait += rand.N(wait/2 + 1)
	p.retryAt = now.Add(wait)
	o.gate[p.conv] = p.retryAt
	return true
}

func (o *outbox) len() int { return len(o.sends) }

// pending reports whether the send is unsettled.
func (o *outbox) pending(cmid string) bool { return o.sends[cmid] != nil }
