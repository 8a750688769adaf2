package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of seqchat_ingest_sends_total.
const (
	resultAccepted    = "accepted"
	resultInvalid     = "invalid"
	resultUnavailable = "unavailable"
)

type metrics struct {
	sends    *prometheus.CounterVec
	produce  prometheus.Histogram
	rewrites prometheus.Counter
}

// newMetrics builds the collectors and registers them with reg unless reg
// is nil (then they count for nobody, which keeps Submit free of nil checks).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seqchat_ingest_sends_total",
			Help: "Sends submitted to ingest, by result: accepted (acknowledged by the broker), invalid, unavailable.",
		}, []string{"result"}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seqchat_ingest_produce_seconds",
			Help:    "Time from producing a raw record to the broker's acknowledgement (or giving up).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. 32s
		}),
		rewrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seqchat_ingest_rewrites_total",
			Help: "Raw records written again after the producer gave up on them (a broker restarting, a leader moving).",
		}),
	}
	for _, r := range []string{resultAccepted, resultInvalid, resultUnavailable} {
		m.sends.WithLabelValues(r) // export zeros, so rates exist before the first failure
	}
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{m.sends, m.produce, m.rewrites}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range collectors[:i] { // leave reg as it was
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	return m, nil
}
