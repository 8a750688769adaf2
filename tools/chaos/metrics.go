package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// samples are the counters, gauges and untyped samples of one /metrics
// page, and the sums and counts of its histograms (as name_sum,
// name_count), by name{labels}.
type samples map[string]float64

// scrapeSamples reads the samples of the service at admin.
func scrapeSamples(ctx context.Context, admin string) (samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: %s", admin, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", admin, err)
	}
	out := samples{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				out[key] = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_sum"] = m.GetHistogram().GetSampleSum()
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

// changes lists what grew between before and after among the metrics
// whose names start with one of prefixes, without the prefix, in name
// order ("resumes_total{path=heads} +200"); a histogram's growth is shown
// as its count and mean ("api_read_seconds 310 x 41ms").
func changes(before, after samples, prefixes ...string) string {
	var out []string
	for key, v := range after {
		short, ok := trimAny(key, prefixes)
		if !ok || v <= before[key] {
			continue
		}
		switch {
		case strings.HasSuffix(key, "_sum"):
			continue
		case strings.HasSuffix(key, "_count"):
			base := strings.TrimSuffix(key, "_count")
			n := v - before[key]
			mean := time.Duration((after[base+"_sum"] - before[base+"_sum"]) / n * float64(time.Second))
			out = append(out, fmt.Sprintf("%s %.0f x %v", strings.TrimSuffix(short, "_count"), n, mean.Round(time.Millisecond/10)))
		default:
			out = append(out, fmt.Sprintf("%s +%.0f", short, v-before[key]))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func trimAny(s string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return "", false
}
