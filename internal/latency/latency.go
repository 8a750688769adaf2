package latency

import (
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Buckets are the upper bounds, in seconds, of every hop histogram:
// 0.25 ms to about 33 s, about 1.5 times apart (roughly a third of a
// doubling), fine enough to tell 5 ms from 8 ms.
var Buckets = prometheus.ExponentialBucketsRange(0.00025, 32, 30)

// NewHistogram is a hop histogram named name (in seconds).
func NewHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: Buckets})
}

// SinceMillis is the time from a Unix-millisecond stamp until now, never
// negative (clocks of one machine, stamps rounded down to the ms).
func SinceMillis(ms int64, now time.Time) time.Duration {
	return max(now.Sub(time.UnixMilli(ms)), 0)
}

// Bucket is one cumulative bucket of a histogram: Count observations at
// or below UpperBound seconds.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Delta is after minus before, bucket by bucket: the observations made
// between two scrapes of the same histogram. Buckets missing from before
// count as zero.
func Delta(before, after []Bucket) []Bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.UpperBound] = b.Count
	}
	out := make([]Bucket, len(after))
	for i, b := range after {
		out[i] = Bucket{UpperBound: b.UpperBound, Count: max(b.Count-prev[b.UpperBound], 0)}
	}
	return out
}

// Quantile estimates the q-quantile (0 < q <= 1) of cumulative buckets,
// interpolating linearly inside the bucket that holds it, as Prometheus'
// histogram_quantile does. The observations above the last finite bound
// give that bound. ok is false when there are no observations.
func Quantile(buckets []Bucket, q float64) (d time.Duration, ok bool) {
	bs := append([]Bucket(nil), buckets...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].UpperBound < bs[j].UpperBound })
	if len(bs) == 0 || bs[len(bs)-1].Count == 0 {
		return 0, false
	}
	total := bs[len(bs)-1].Count
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				return seconds(lower), true
			}
			in := b.Count - below
			frac := 1.0
			if in > 0 {
				frac = (rank - below) / in
			}
			return seconds(lower + (b.UpperBound-lower)*frac), true
		}
		lower, below = b.UpperBound, b.Count
	}
	return seconds(lower), true
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
