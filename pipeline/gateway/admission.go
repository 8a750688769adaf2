package gateway

import (
	"math"
	"sync"
	"time"

	"github.com/seqchat/seqchat/pipeline/latency"
)

// admissionWindow is how often the delay estimate and the admitted rate
// are renewed.
const admissionWindow = 250 * time.Millisecond

// minRetryAfter and maxRetryAfter bound the retry hint given to refused
// senders; minAdmitRate is the lowest rate admission throttles to.
const (
	minRetryAfter = 50 * time.Millisecond
	maxRetryAfter = 5 * time.Second
	minAdmitRate  = 10.0
	// stallProbe is how long nothing comes back before one send probes
	// the pipeline, and the time between probes.
	stallProbe = 2 * time.Second
)

// admission refuses new sends early when the pipeline is behind, so that
// the sends it accepts are still delivered quickly and the backlog cannot
// grow without bound (past capacity, queues grew until p99 reached 31 s).
//
// Its signal is measured, not guessed: the delay of the live entries this
// gateway writes to its clients, from their arrival at ingest
// (received_at_ms) to the write, which covers every stage (the raw topic,
// the sequencer, the fanout, the gateway's topic, its own queues and
// writes); and, should nothing come back while accepted sends are in
// flight (a stalled pipeline), the time since something last did. A send
// is in flight from its acceptance until its own entry (or notice) is
// written to its sender, or the sender's connection closes.
//
// It acts on the rate of accepted sends, not as an on/off gate (which
// let every waiting retry in at once whenever the delay dipped, and the
// burst sent the delay up again): while the measured delay is over the
// limit and not falling, the admitted rate is cut to 80% of what was
// accepted each window; once the delay is under half the limit, it grows
// back by 25% a window, and the limit is lifted once it is far above what
// is sent. Safe for concurrent use.
type admission struct {
	limit time.Duration // the delay to stay under; <= 0: never refuse

	mu          sync.Mutex
	window      []float64 // observations of the current window, by bucket (latency.Buckets + overflow)
	windowStart time.Time
	estimate    time.Duration // p90 of the last full window
	inFlight    int           // accepted sends not yet echoed to their senders
	since       time.Time     // since when nothing came back while inFlight > 0
	accepts     int           // sends accepted in the current window
	rate        float64       // admitted sends per second; +Inf: no limit
	tokens      float64
	refill      time.Time
	probed      time.Time // the last send let through a stall to probe it
}

func newAdmission(limit time.Duration, now time.Time) *admission {
	return &admission{limit: limit, window: make([]float64, len(latency.Buckets)+1), windowStart: now,
		rate: math.Inf(1), refill: now}
}

// entry records a live entry that took delay from ingest to its client.
func (a *admission) entry(delay time.Duration, now time.Time) { a.entries([]time.Duration{delay}, now) }

// entries records live entries written together, each with its delay
// from ingest to its client (one lock for a connection's whole write).
func (a *admission) entries(delays []time.Duration, now time.Time) {
	if len(delays) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	for _, d := range delays {
		i := 0
		for i < len(latency.Buckets) && d.Seconds() > latency.Buckets[i] {
			i++
		}
		a.window[i]++
	}
	if a.inFlight > 0 {
		a.since = now // progress
	}
}

// admit reports whether a new send may go in now (and counts it as
// accepted if so: call accepted only for sends the pipeline took); when
// not, retryAfter is the hint for the client's retry.
func (a *admission) admit(now time.Time) (ok bool, retryAfter time.Duration) {
	if a.limit <= 0 {
		return true, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	est := a.current(now)
	if math.IsInf(a.rate, 1) && est <= a.limit {
		return true, 0
	}
	if !math.IsInf(a.rate, 1) {
		burst := max(a.rate*0.05, 1)
		a.tokens = min(burst, a.tokens+now.Sub(a.refill).Seconds()*a.rate)
		a.refill = now
		if a.tokens >= 1 && est <= a.limit {
			a.tokens--
			return true, 0
		}
	}
	// Only the stall term is over (what does come back is on time) and
	// for a while: let one send through every stallProbe, whose entry ends
	// the stall if the pipeline works. Without it, a send whose entry can
	// never reach this gateway kept it refusing everything for good.
	if a.estimate <= a.limit && now.Sub(a.since) >= stallProbe && now.Sub(a.probed) >= stallProbe {
		a.probed = now
		return true, 0
	}
	return false, min(max(est, time.Duration((1-a.tokens)/a.rate*float64(time.Second)), minRetryAfter), maxRetryAfter)
}

// accepted records a send the pipeline took: it is in flight.
func (a *admission) accepted(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accepts++
	if a.inFlight == 0 {
		a.since = now
	}
	a.inFlight++
}

// landed records that n sends are no longer in flight: their entries (or
// notices) reached their senders, or the senders' connections closed. It
// is progress, as an entry is (entries delivered from history are counted
// only here).
func (a *admission) landed(n int, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight = max(a.inFlight-n, 0)
	if n > 0 {
		a.since = now
	}
}

// current is the estimate, or how long nothing came back while sends are
// in flight if that is longer; a.mu is held.
func (a *admission) current(now time.Time) time.Duration {
	if a.inFlight > 0 {
		return max(a.estimate, now.Sub(a.since))
	}
	return a.estimate
}

// delay is the current estimate of how far behind the pipeline is.
func (a *admission) delay(now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	return a.current(now)
}

// roll closes the current window once it is admissionWindow old: its p90
// becomes the estimate (an empty window, or one older than two windows,
// gives zero: what is still in flight counts through current),
// and the admitted rate follows it.
func (a *admission) roll(now time.Time) {
	elapsed := now.Sub(a.windowStart)
	if elapsed < admissionWindow {
		return
	}
	total := 0.0
	for _, n := range a.window {
		total += n
	}
	prev := a.estimate
	a.estimate = 0
	if total > 0 && elapsed < 2*admissionWindow {
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
	est := a.current(now)
	sent := float64(a.accepts) / elapsed.Seconds()
	switch {
	case a.estimate > a.limit && a.estimate >= prev && a.accepts > 0 && elapsed < 2*admissionWindow:
		// Cut while the measured delay is over and not falling. Not on a
		// stall (admit refuses and probes), not while a backlog drains
		// (after an outage that cut left clients' resends at a trickle for
		// minutes), not without a rate to cut from (nothing sent, or a
		// window spanning a pause).
		a.rate = max(min(a.rate, sent)*0.8, minAdmitRate)
	case est < a.limit/2 && !math.IsInf(a.rate, 1):
		a.rate *= 1.25
		if a.rate > 4*sent+100 { // far above what is sent: no limit needed
			a.rate = math.Inf(1)
		}
	}
	clear(a.window)
	a.accepts = 0
	a.windowStart = now
}
