package client

import (
	"math/rand/v2"
	"time"
)

const (
	// unavailableRetry: how soon a send answered `unavailable` without a
	// hint is written again; rateLimitedRetry, one answered `rate_limited`.
	unavailableRetry = 500 * time.Millisecond
	rateLimitedRetry = time.Second
	// never is the retry time of a send written on a live connection: the
	// gateway answers every send it reads, so it goes again only after a
	// refusal or on the next connection.
	never = 100 * 365 * 24 * time.Hour
)

// pending is a send from the moment it is made until it ends in its own
// entry, an accepted answer naming its seq, or a rejection.
type pending struct {
	conv      string
	cmid      string
	clientSeq uint64
	frame     []byte
	retryAt   time.Time
}

// outbox keeps the unsettled sends and decides which to write when. A
// conversation's sends are written in the order they were made, and none
// before a refused earlier one (the gateway refuses those: protocol.md,
// "Refused sends and their order"). Not safe for concurrent use.
type outbox struct {
	maxRetry time.Duration
	sends    map[string]*pending
	order    []string // cmids, oldest first (with settled ones until the next due)
	// gate holds a conversation's sends back until its refused one may go
	// again; rounds counts its refusals in a row, and the wait grows with them.
	gate   map[string]time.Time
	rounds map[string]int
}

func newOutbox(maxRetry time.Duration) *outbox {
	return &outbox{maxRetry: maxRetry, sends: map[string]*pending{}, gate: map[string]time.Time{}, rounds: map[string]int{}}
}

func (o *outbox) add(p *pending, now time.Time) {
	if o.sends[p.cmid] != nil {
		return
	}
	if g := o.gate[p.conv]; now.Before(g) {
		p.retryAt = g
	}
	o.sends[p.cmid] = p
	o.order = append(o.order, p.cmid)
}

// due returns the sends to write now, oldest first, and marks them
// written: those whose retry time passed, or, on a new connection (all),
// every unsettled one.
func (o *outbox) due(now time.Time, all bool) []*pending {
	var out []*pending
	kept := o.order[:0]
	for _, cmid := range o.order {
		p := o.sends[cmid]
		if p == nil {
			continue
		}
		kept = append(kept, cmid)
		if all || (!now.Before(p.retryAt) && !now.Before(o.gate[p.conv])) {
			out = append(out, p)
			p.retryAt = now.Add(never)
		}
	}
	o.order = kept
	return out
}

// settle ends a send; false if it was not pending.
func (o *outbox) settle(cmid string) bool {
	p := o.sends[cmid]
	if p == nil {
		return false
	}
	delete(o.sends, cmid)
	delete(o.rounds, p.conv)
	return true
}

// accepted notes the broker took the send: its conversation is moving.
func (o *outbox) accepted(cmid string) {
	if p := o.sends[cmid]; p != nil {
		delete(o.rounds, p.conv)
	}
}

// refused schedules a refused send (`unavailable`, `rate_limited`) and
// holds its conversation's later sends behind it; false if not pending.
func (o *outbox) refused(cmid, code string, hint time.Duration, now time.Time) bool {
	p := o.sends[cmid]
	if p == nil {
		return false
	}
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
