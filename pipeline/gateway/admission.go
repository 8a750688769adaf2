package gateway

import (
	"math"
	"sync"
	"time"

	"github.com/seqchat/seqchat/internal/latency"
)

// admissionWindow is how often the delay estimate and the admitted rate
// are renewed.
const admissionWindow = 250 * time.Millisecond

// admissionHorizon is how many windows (a second) the rate is cut on:
// over it the delay must stay over the limit and not fall, and the sends
// in flight grow by at least minBacklogGrowth and a tenth of the accepted
// sends. From one window to the next, at a gateway's few sends a window,
// more sent than came back was noise: after broker faults, at 20 sends/s,
// it cut the rate to its floor while the pipeline was slow but not full.
const (
	admissionHorizon = 4
	minBacklogGrowth = 10
)

// minRetryAfter and maxRetryAfter bound the retry hint given to refused
// senders; minAdmitRate is the lowest rate admission throttles to.
const (
	minRetryAfter = 50 * time.Millisecond
	maxRetryAfter = 5 * time.Second
	minAdmitRate  = 10.0
)

// admission refuses new sends early when the pipeline is behind, so that
// the sends it accepts are still delivered quickly and the backlog cannot
// grow without bound (past capacity, queues grew until p99 reached 31 s).
//
// Its signal is measured, not guessed: the delay of the live entries this
// gateway writes to its clients, from their arrival at ingest
// (received_at_ms) to the write, which covers every stage (the raw topic,
// the sequencer, the fanout, the gateway's topic, its own queues and
// writes). Entries a connection held back (its resume not done, a gap
// before them being filled) are left out: their delay is that
// connection's catch-up, and a reconnect storm's read as overload.
//
// Faults are not refused, only capacity: while nothing comes back (a
// broker fault, a sequencer restarting) the broker keeps what ingest
// accepted, and when the backlog then comes back late its delay falls
// window after window. Refusing in either case only added the clients'
// backoff to every send (latency p50 52-55 s on the broker-fault test,
// 9-12 s without refusals). Past capacity the delay stays over the limit
// and grows.
//
// It acts on the rate of accepted sends, not as an on/off gate (which
// let every waiting retry in at once whenever the delay dipped, and the
// burst sent the delay up again): while, over the last second, the
// measured delay stayed over the limit and did not fall and more was
// sent than came back, the admitted rate is cut to 80% of what was
// accepted, each window; once the delay is under half the limit, it
// grows back by 25% a window (under the limit and no higher than a
// second before, by 5%),
// and the limit is lifted once it is far above what clients ask for.
// Safe for concurrent use.
type admission struct {
	limit time.Duration // the delay to stay under; <= 0: never refuse

	mu          sync.Mutex
	window      []float64 // observations of the current window, by bucket (latency.Buckets + overflow)
	windowStart time.Time
	estimate    time.Duration                   // p90 of the last full window
	accepts     int                             // sends accepted in the current window
	lands       int                             // sends whose entry (or notice) came back to their sender
	asks        int                             // sends asking to go in, refused ones too
	recent      [admissionHorizon]windowSummary // the last full windows, oldest first
	rate        float64                         // admitted sends per second; +Inf: no limit
	tokens      float64
	refill      time.Time
}

// windowSummary is what the rate is cut on, of one window.
type windowSummary struct {
	estimate       time.Duration
	accepts, lands int
	seconds        float64
}

func newAdmission(limit time.Duration, now time.Time) *admission {
	return &admission{limit: limit, window: make([]float64, len(latency.Buckets)+1), windowStart: now,
		rate: math.Inf(1), refill: now}
}

// entry records a live entry that took delay from ingest to its client.
func (a *admission) entry(delay time.Duration, now time.Time) {
	a.entries([]time.Duration{delay}, 0, now)
}

// entries records live entries written together, each with its delay
// from ingest to its client (one lock for a connection's whole write);
// own of them are sends of the device they were written to, back.
func (a *admission) entries(delays []time.Duration, own int, now time.Time) {
	if len(delays) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	a.lands += own
	for _, d := range delays {
		i := 0
		for i < len(latency.Buckets) && d.Seconds() > latency.Buckets[i] {
			i++
		}
		a.window[i]++
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
	a.asks++
	if math.IsInf(a.rate, 1) {
		return true, 0
	}
	burst := max(a.rate*0.05, 1)
	a.tokens = min(burst, a.tokens+now.Sub(a.refill).Seconds()*a.rate)
	a.refill = now
	if a.tokens >= 1 {
		a.tokens--
		return true, 0
	}
	return false, min(max(a.estimate, time.Duration((1-a.tokens)/a.rate*float64(time.Second)), minRetryAfter), maxRetryAfter)
}

// accepted records a send the pipeline took, waited after the gateway
// handed it to ingest. One the broker took a limit or longer to
// acknowledge is not counted: it is an outage's backlog (a broker
// restarting), not new demand. Counted, the sends held through a restart,
// all acknowledged as the broker returned, read as sends outrunning what
// came back while their entries came back late, and the rate was cut just
// then (34 overload refusals, and 1,396 order refusals of the sends queued
// behind them, in one restart).
func (a *admission) accepted(waited time.Duration, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	if a.limit > 0 && waited >= a.limit {
		return
	}
	a.accepts++
}

// landed records a send answered by a notice (a rejection, a repeat's
// answer) back to its sender.
func (a *admission) landed(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	a.lands++
}

// delay is the current estimate of how far behind the pipeline is.
func (a *admission) delay(now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	return a.estimate
}

// grown is the rate grown by factor, or no limit once that is far above
// what clients ask for (over the window that lasted elapsed).
func (a *admission) grown(factor float64, elapsed time.Duration) float64 {
	if r := a.rate * factor; r <= 4*float64(a.asks)/elapsed.Seconds()+100 {
		return r
	}
	return math.Inf(1)
}

// admitted is the admitted rate, sends per second (+Inf: no limit).
func (a *admission) admitted(now time.Time) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now)
	return a.rate
}

// roll closes the current window once it is admissionWindow old: its p90
// becomes the estimate (an empty window, or one older than two windows,
// gives zero), and the admitted rate follows it.
func (a *admission) roll(now time.Time) {
	elapsed := now.Sub(a.windowStart)
	if elapsed < admissionWindow {
		return
	}
	total := 0.0
	for _, n := range a.window {
		total += n
	}
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
	if elapsed >= 2*admissionWindow { // a pause: nothing before it counts
		a.recent = [admissionHorizon]windowSummary{}
	}
	copy(a.recent[:], a.recent[1:])
	a.recent[admissionHorizon-1] = windowSummary{estimate: a.estimate, accepts: a.accepts, lands: a.lands, seconds: elapsed.Seconds()}
	over := true
	accepts, lands, seconds := 0, 0, 0.0
	for _, w := range a.recent {
		over = over && w.estimate > a.limit
		accepts, lands, seconds = accepts+w.accepts, lands+w.lands, seconds+w.seconds
	}
	rising := a.estimate >= a.recent[0].estimate
	switch {
	case over && rising && accepts-lands >= max(minBacklogGrowth, accepts/10):
		// Cut while the delay stays over, is not falling, and more is
		// sent than comes back: the backlog grows. Not while more comes
		// back than is sent: the backlog of an outage draining (its delay
		// can rise for a while as partitions come back one by one; cut
		// then, the clients' resends trickled in for minutes).
		a.rate = max(min(a.rate, float64(accepts)/seconds)*0.8, minAdmitRate)
	case a.estimate < a.limit/2 && !math.IsInf(a.rate, 1):
		a.rate = a.grown(1.25, elapsed)
	case a.estimate < a.limit && a.estimate <= a.recent[0].estimate && !math.IsInf(a.rate, 1):
		// Under the limit and no higher than a second ago: the pipeline
		// keeps up, only slower than usual (a broker just restarted runs
		// at 0.5-0.8 s for a minute). Held there, the rate let the
		// refused clients' backlog in no faster than the cut allowed
		// (88,034 refusals and 85 s after one broker restart). Slowly,
		// so that a delay near the limit is not answered with a burst.
		a.rate = a.grown(1.05, elapsed)
	}
	// Never below what comes back: a backlog draining after an outage
	// (entries late, but more returning than sent) shows the pipeline's
	// capacity. A rate cut as the outage ended, when little came back
	// yet, otherwise held through the whole drain: the delay stayed over
	// the limit, so it never grew back (37,212 refusals and 44 s after a
	// broker restart that another run recovered from in 15 s with none).
	// A tenth less, so that past capacity the backlog still shrinks.
	a.rate = max(a.rate, 0.9*float64(lands)/seconds)
	clear(a.window)
	a.accepts, a.lands, a.asks = 0, 0, 0
	a.windowStart = now
}
