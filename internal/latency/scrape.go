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

// Histograms are the cumulative buckets of every unlabelled histogram of
// one /metrics page, by metric name (the +Inf bucket holds the count).
type Histograms map[string][]Bucket

// Parse reads the histograms of a Prometheus text exposition.
func Parse(r io.Reader) (Histograms, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Histograms{}
	for name, f := range fams {
		ms := f.GetMetric()
		if len(ms) != 1 || ms[0].GetHistogram() == nil || len(ms[0].GetLabel()) > 0 {
			continue
		}
		h := ms[0].GetHistogram()
		var bs []Bucket
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				bs = append(bs, Bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
			}
		}
		out[name] = append(bs, Bucket{UpperBound: math.Inf(1), Count: float64(h.GetSampleCount())})
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
