package fanout

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	entries, deliveries, dropped, skipped prometheus.Counter
	partitions                            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		entries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_entries_total", Help: "Sequenced records routed."}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_deliveries_total", Help: "Gateway deliveries written (one per entry and gateway)."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_dropped_total", Help: "Deliveries not written because the gateway's topic is gone."}),
		skipped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_fanout_skipped_total", Help: "Undecodable sequenced records skipped."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_fanout_partitions", Help: "Sequenced partitions this instance routes."}),
	}
	if reg != nil {
		reg.MustRegister(m.entries, m.deliveries, m.dropped, m.skipped, m.partitions)
	}
	return m
}
