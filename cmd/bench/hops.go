package main

import (
	"time"

	"github.com/seqchat/seqchat/internal/latency"
)

// hop is one leg of the pipeline's path, measured by a service histogram.
type hop struct {
	name, service, metric string
}

// hops are the pipeline's legs in path order (docs/architecture.md,
// "Latency by hop").
var hops = []hop{
	{"ingest ack", "gateway", "seqchat_ingest_produce_seconds"},
	{"raw → committed", "sequencer", "seqchat_sequencer_commit_delay_seconds"},
	{"sequenced → routed", "fanout", "seqchat_fanout_route_delay_seconds"},
	{"routed → written", "gateway", "seqchat_gateway_write_delay_seconds"},
}

// hopLeg is one hop's latency over a run.
type hopLeg struct {
	name     string
	count    float64
	p50, p99 time.Duration
}

// hopLegs are the quantiles of what each hop observed between two scrapes
// (a hop its service does not export is left out).
func hopLegs(before, after map[string]latency.Histograms) []hopLeg {
	var out []hopLeg
	for _, h := range hops {
		a := after[h.service][h.metric]
		if a == nil {
			continue
		}
		d := latency.Delta(before[h.service][h.metric], a)
		leg := hopLeg{name: h.name, count: d[len(d)-1].Count}
		leg.p50, _ = latency.Quantile(d, 0.5)
		leg.p99, _ = latency.Quantile(d, 0.99)
		out = append(out, leg)
	}
	return out
}
