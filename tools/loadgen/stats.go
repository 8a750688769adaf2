package loadgen

import (
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank q-quantile (0 < q <= 1) of sorted, an
// ascending slice: the smallest value with at least q of the values at or
// below it. Zero for an empty slice.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// LatencySummary are the reported quantiles of a set of latencies, in
// milliseconds.
type LatencySummary struct {
	Count  int     `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summarize computes the summary of latencies (any order; not modified).
func Summarize(latencies []time.Duration) LatencySummary {
	s := slices.Clone(latencies)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := LatencySummary{Count: len(s), P50ms: ms(Percentile(s, 0.50)), P90ms: ms(Percentile(s, 0.90)),
		P99ms: ms(Percentile(s, 0.99)), P999ms: ms(Percentile(s, 0.999))}
	if len(s) > 0 {
		out.MaxMs = ms(s[len(s)-1])
	}
	return out
}

// Histogram counts latencies in log-scale buckets: PerDecade buckets per
// factor of ten from Min up to Min*10^Decades; values below Min go to the
// first bucket, values at or above the top to the last.
type Histogram struct {
	Min       time.Duration `json:"min_ns"`
	PerDecade int           `json:"per_decade"`
	Decades   int           `json:"decades"`
	Counts    []uint64      `json:"counts"`
}

// NewHistogram is a histogram from 100µs to 100s, 10 buckets per decade.
func NewHistogram() *Histogram {
	return &Histogram{Min: 100 * time.Microsecond, PerDecade: 10, Decades: 6, Counts: make([]uint64, 60)}
}

// Add counts d.
func (h *Histogram) Add(d time.Duration) {
	i := 0
	if d > h.Min {
		i = int(math.Floor(math.Log10(float64(d)/float64(h.Min)) * float64(h.PerDecade)))
	}
	h.Counts[min(max(i, 0), len(h.Counts)-1)]++
}

// Lower is the lower bound of bucket i.
func (h *Histogram) Lower(i int) time.Duration {
	return time.Duration(float64(h.Min) * math.Pow(10, float64(i)/float64(h.PerDecade)))
}
