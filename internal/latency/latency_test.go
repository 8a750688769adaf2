package latency

import (
	"context"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// buckets reads h's cumulative buckets as Quantile takes them.
func buckets(t *testing.T, h prometheus.Histogram) []Bucket {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	var out []Bucket
	for _, b := range m.GetHistogram().GetBucket() {
		out = append(out, Bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
	}
	return append(out, Bucket{UpperBound: math.Inf(1), Count: float64(m.GetHistogram().GetSampleCount())})
}

func TestQuantileIsWithinTheBucketOfTheTrueQuantile(t *testing.T) {
	h := NewHistogram("x_seconds", "test")
	// 1..1000 ms, uniform: p50 is 500 ms, p99 990 ms.
	for i := 1; i <= 1000; i++ {
		h.Observe(float64(i) / 1000)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.01, 10 * time.Millisecond}} {
		got, ok := Quantile(buckets(t, h), tc.q)
		if !ok {
			t.Fatalf("q=%v: no observations", tc.q)
		}
		// One bucket is at most 1.5 times wide: the estimate is within it.
		if ratio := float64(got) / float64(tc.want); ratio < 1/1.5 || ratio > 1.5 {
			t.Errorf("q=%v: got %v, want about %v", tc.q, got, tc.want)
		}
	}
}

func TestDeltaKeepsOnlyTheObservationsBetweenScrapes(t *testing.T) {
	h := NewHistogram("x_seconds", "test")
	for range 100 {
		h.Observe(5) // before: slow
	}
	before := buckets(t, h)
	for range 100 {
		h.Observe(0.002) // between the scrapes: fast
	}
	d := Delta(before, buckets(t, h))
	got, ok := Quantile(d, 0.99)
	if !ok || got > 4*time.Millisecond {
		t.Fatalf("p99 of the delta = %v (ok %v), want about 2ms: the earlier slow observations leaked in", got, ok)
	}
	if total := d[len(d)-1].Count; total != 100 {
		t.Fatalf("delta holds %v observations, want 100", total)
	}
}

func TestQuantileOfNothing(t *testing.T) {
	if _, ok := Quantile(nil, 0.5); ok {
		t.Fatal("ok for no buckets")
	}
	if _, ok := Quantile([]Bucket{{0.1, 0}, {math.Inf(1), 0}}, 0.5); ok {
		t.Fatal("ok for empty buckets")
	}
}

func TestQuantileAboveTheLastBoundIsThatBound(t *testing.T) {
	got, ok := Quantile([]Bucket{{1, 0}, {2, 0}, {math.Inf(1), 10}}, 0.5)
	if !ok || got != 2*time.Second {
		t.Fatalf("got %v %v, want 2s", got, ok)
	}
}

func TestSinceMillisIsNeverNegative(t *testing.T) {
	now := time.Now()
	if d := SinceMillis(now.Add(time.Second).UnixMilli(), now); d != 0 {
		t.Fatalf("a stamp in the future gave %v", d)
	}
	if d := SinceMillis(now.Add(-time.Second).UnixMilli(), now); d < time.Second || d > time.Second+time.Millisecond {
		t.Fatalf("a second ago gave %v", d)
	}
}

func TestParseReadsTheHistogramsOfAPage(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHistogram("hop_seconds", "a hop")
	reg.MustRegister(h, prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total", Help: "not a histogram"}))
	h.Observe(0.003)
	h.Observe(0.004)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got, err := Scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["hop_seconds"] == nil {
		t.Fatalf("histograms %v, want hop_seconds only", got)
	}
	bs := got["hop_seconds"]
	if last := bs[len(bs)-1]; !math.IsInf(last.UpperBound, 1) || last.Count != 2 {
		t.Fatalf("last bucket %+v, want +Inf with 2", last)
	}
	if p50, _ := Quantile(bs, 0.5); p50 < 2*time.Millisecond || p50 > 5*time.Millisecond {
		t.Fatalf("p50 %v, want 3-4ms", p50)
	}

	// A service running an instance per generation labels each one's
	// histogram with its generation: the page's histogram is their sum.
	// Other labels are not a hop's histogram.
	reg = prometheus.NewRegistry()
	for g, v := range map[string]float64{"1": 0.003, "2": 0.004} {
		h := NewHistogram("hop_seconds", "a hop")
		prometheus.WrapRegistererWith(prometheus.Labels{"generation": g}, reg).MustRegister(h)
		h.Observe(v)
	}
	other := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "by_kind_seconds"}, []string{"kind"})
	reg.MustRegister(other)
	other.WithLabelValues("a").Observe(1)
	srv2 := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv2.Close()
	if got, err = Scrape(context.Background(), srv2.URL); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["hop_seconds"] == nil {
		t.Fatalf("histograms %v, want hop_seconds only", got)
	}
	bs = got["hop_seconds"]
	if last := bs[len(bs)-1]; last.Count != 2 {
		t.Fatalf("last bucket %+v, want +Inf with the two generations' 2", last)
	}
}
