package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// idleSignals are the gauges that say the pipeline has work in hand: the
// records its stages are behind, and how far behind the gateway measures it.
var idleSignals = map[string][]string{
	"sequencer": {"seqchat_sequencer_lag_records"},
	"fanout":    {"seqchat_fanout_lag_records"},
	"gateway":   {"seqchat_gateway_pipeline_delay_seconds"},
}

// waitIdle waits (up to limit) until the pipeline has drained what earlier
// runs left: a run past capacity leaves a backlog that would otherwise be
// measured as the next run's latency (and its refusals as the next run's).
func (c config) waitIdle(limit time.Duration) {
	start := time.Now()
	for {
		busy := ""
		for svc, names := range idleSignals {
			for _, name := range names {
				if v := gaugeSum(c.metrics[svc], name); v > 0.05 {
					busy = fmt.Sprintf("%s %s = %g", svc, name, v)
				}
			}
		}
		if busy == "" {
			return
		}
		if time.Since(start) > limit {
			fmt.Fprintf(os.Stderr, "bench: the pipeline is still busy after %v (%s); measuring anyway\n", limit, busy)
			return
		}
		time.Sleep(time.Second) // polling the services' gauges
	}
}

// gaugeSum is the sum of a gauge's series on a /metrics page (0 when absent
// or unreachable).
func gaugeSum(url, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil || fams[name] == nil {
		return 0
	}
	sum := 0.0
	for _, m := range fams[name].GetMetric() {
		sum += m.GetGauge().GetValue()
	}
	return sum
}
