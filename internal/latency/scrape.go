package latency

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Histograms are the cumulative buckets of every histogram of one
// /metrics page that is unlabelled or labelled by generation only (the
// instances of a service that runs one per generation of the partitioned
// topics, summed), by metric name (the +Inf bucket holds the count).
type Histograms map[string][]Bucket

// Parse reads the histograms of a Prometheus text exposition.
func Parse(r io.Reader) (Histograms, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Histograms{}
fams:
	for name, f := range fams {
		var sum []Bucket
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h == nil || len(m.GetLabel()) > 1 || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() != "generation" {
				continue fams
			}
			var bs []Bucket
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					bs = append(bs, Bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
				}
			}
			bs = append(bs, Bucket{UpperBound: math.Inf(1), Count: float64(h.GetSampleCount())})
			if sum == nil {
				sum = bs
				continue
			}
			if len(bs) != len(sum) {
				continue fams
			}
			for i := range sum {
				sum[i].Count += bs[i].Count
			}
		}
		if sum != nil {
			out[name] = sum
		}
	}
	return out, nil
}

// Scrape fetches and parses url (a service's /metrics).
func Scrape(ctx context.Context, url string) (Histograms, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}
