package gateway

import (
	"sync"
	"time"

	"github.com/seqchat/seqchat/pipeline/latency"
)

// admissionWindow is how often the delay estimate is renewed.
const admissionWindow = 250 * time.Millisecond

// minRetryAfter and maxRetryAfter bound the retry hint given to refused
// senders.
const (
	minRetryAfter = 50 * time.Millisecond
	maxRetryAfter = 5 * time.Second
)

// admission refuses new sends early when the pipeline is behind, so that
// the sends it accepts are still delivered quickly and the backlog cannot
// grow without bound (past capacity, queues grew until p99 reached 31 s).
// Its signal is measured, not guessed: the delay of the live entries this
// gateway receives, from their arrival at ingest (received_at_ms) to now,
// which covers every stage (the raw topic, the sequencer, the fanout, the
// gateway's own topic); and, should entries stop coming back while sends
// are accepted (a stalled pipeline), the time since the first such send.
// Safe for concurrent use.
type admission struct {
	limit time.Duration // refuse while the estimate is above it; <= 0: never

	mu          sync.Mutex
	window      []float64 // observations of the current window, by bucket (latency.Buckets + overflow)
	windowStart time.Time
	estimate    time.Duration // p90 of the last full window
	lastEntry   time.Time     // when the last live entry arrived
	waiting     time.Time     // the first send accepted since lastEntry (zero: none)
}

func newAdmission(limit time.Duration, now time.Time) *admission {
	return &admission{limit: limit, window: make([]float64, len(latency.Buckets)+1), windowStart: now, lastEntry: now}
}

// entry records a live entry that took delay from ingest to here.
func (a *admission) entry(delay time.Duration, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	i := 0
	for i < len(latency.Buckets) && delay.Seconds() > latency.Buckets[i] {
		i++
	}
	a.window[i]++
	a.lastEntry, a.waiting = now, time.Time{}
}

// accepted records a send handed to the pipeline.
func (a *admission) accepted(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiting.IsZero() {
		a.waiting = now
	}
}

// admit reports whether a new send may go in now; when not, retryAfter is
// how long the pipeline is behind, the hint for the client's retry.
func (a *admission) admit(now time.Time) (ok bool, retryAfter time.Duration) {
	if a.limit <= 0 {
		return true, 0
	}
	est := a.delay(now)
	if est <= a.limit {
		return true, 0
	}
	return false, min(max(est, minRetryAfter), maxRetryAfter)
}

// delay is the current estimate of how far behind the pipeline is.
func (a *admission) delay(now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	est := a.estimate
	if !a.waiting.IsZero() {
		est = max(est, now.Sub(a.waiting))
	}
	return est
}

// roll closes the current window once it is admissionWindow old: its p90
// becomes the estimate. An empty window gives zero: nothing came back, and
// what is still in flight counts through the waiting send instead.
func (a *admission) roll(now time.Time) {
	if now.Sub(a.windowStart) < admissionWindow {
		return
	}
	total := 0.0
	for _, n := range a.window {
		total += n
	}
	a.estimate = 0
	// More than a window since the last roll: the latest full window
	// received nothing.
	if total > 0 && now.Sub(a.windowStart) < 2*admissionWindow {
		bs := make([]latency.Bucket, 0, len(a.window))
		cum := 0.0
		for i, n := range a.window {
			cum += n
			ub := 2 * latency.Buckets[len(latency.Buckets)-1]
			if i < len(latency.Buckets) {
				ub = latency.Buckets[i]
			}
			bs = append(bs, latency.Bucket{UpperBound: ub, Count: cum})
		}
		a.estimate, _ = latency.Quantile(bs, 0.9)
	}
	clear(a.window)
	a.windowStart = now
}
