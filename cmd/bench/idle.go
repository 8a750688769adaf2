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

// idleSignal is a gauge that says the pipeline has work in hand while its
// series add up to more than perSeries each.
type idleSignal struct {
	service, name string
	perSeries     float64
}

// idleSignals: the records the stages are behind (the fanout reads a
// transactional topic, where each partition's last commit marker counts as
// one record behind), and how far behind the gateway measures the pipeline.
var idleSignals = []idleSignal{
	{"sequencer", "seqchat_sequencer_lag_records", 0},
	{"fanout", "seqchat_fanout_lag_records", 1},
	{"gateway", "seqchat_gateway_pipeline_delay_seconds", 0.05},
}

// waitIdle waits (up to limit) until the pipeline has drained what earlier
// runs left: a run past capacity leaves a backlog that would otherwise be
// measured as the next run's latency (and its refusals as the next run's).
func (c config) waitIdle(limit time.Duration) {
	start := time.Now()
	for {
		busy := ""
		for _, sig := range idleSignals {
			if v, n := gaugeSum(c.metrics[sig.service], sig.name); v > sig.perSeries*float64(n) {
				busy = fmt.Sprintf("%s %s = %g", sig.service, sig.name, v)
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

// gaugeSum is the sum of a gauge's series on a /metrics page and their
// number (0, 0 when absent or unreachable).
func gaugeSum(url, name string) (sum float64, series int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil || fams[name] == nil {
		return 0, 0
	}
	for _, m := range fams[name].GetMetric() {
		sum += m.GetGauge().GetValue()
		series++
	}
	return sum, series
}
