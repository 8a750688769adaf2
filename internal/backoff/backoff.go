// Package backoff is the bounded exponential delay every retry loop of the
// pipeline waits with: min, 2*min, ... up to max.
package backoff

import (
	"context"
	"time"
)

// Backoff is not safe for concurrent use: one retry loop owns it.
type Backoff struct {
	min, max, next time.Duration
}

// New starts at min and doubles up to max.
func New(min, max time.Duration) *Backoff { return &Backoff{min: min, max: max, next: min} }

// Next is the delay the next Wait sleeps.
func (b *Backoff) Next() time.Duration { return b.next }

// Wait sleeps the next delay and doubles it; false means ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Reset starts again from min.
func (b *Backoff) Reset() { b.next = b.min }
