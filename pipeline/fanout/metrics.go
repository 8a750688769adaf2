package fanout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/latency"
)

type metrics struct {
	entries, deliveries, dropped, skipped prometheus.Counter
	routingStarted                        prometheus.Counter
	partitions                            prometheus.Gauge
	routeDelay                            prometheus.Histogram
	lag                                   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		entries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_entries_total", Help: "Sequenced records routed."}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_deliveries_total", Help: "Gateway deliveries written (one per entry and gateway)."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_dropped_total", Help: "Deliveries not written because the gateway's topic is gone."}),
		skipped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_skipped_total", Help: "Sequenced records skipped: undecodable, or of an older epoch than their conversation's stream."}),
		routingStarted: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_routing_started_total",
			Help: "RoutingStarted notices written: a partition routed to a newly connected device from an offset on."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_fanout_partitions", Help: "Sequenced partitions this instance routes."}),
		routeDelay: latency.NewHistogram("seqchat_fanout_route_delay_seconds",
			"From an entry's sequencing (sequenced_at_ms) until its deliveries were acknowledged by the gateway topics (the sequencer's commit included)."),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seqchat_fanout_lag_records",
			Help: "Sequenced records behind the partition's high-water mark, after each batch."}, []string{"partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.entries, m.deliveries, m.dropped, m.skipped, m.routingStarted, m.partitions, m.routeDelay, m.lag)
	}
	return m
}
