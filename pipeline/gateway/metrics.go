package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/pipeline/latency"
)

type metrics struct {
	connections                                    prometheus.Gauge
	framesIn, framesOut, delivered, fills, badAcks prometheus.Counter
	historyErrors, settleSkips                     prometheus.Counter
	disconnects                                    *prometheus.CounterVec
	writeDelay                                     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_gateway_" + name, Help: help})
	}
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_gateway_connections", Help: "Authenticated connections."}),
		framesIn:      c("frames_in_total", "Client frames read."),
		framesOut:     c("frames_out_total", "Frames queued to clients."),
		delivered:     c("delivered_total", "Entries delivered in order to devices."),
		fills:         c("history_reads_total", "History reads for catch-up and gap fills."),
		badAcks:       c("bad_acks_total", "Acks beyond what was delivered, ignored."),
		historyErrors: c("history_errors_total", "Failed history reads (retried)."),
		settleSkips:   c("settle_skips_total", "Conversations the settle pass did not read: live entries already arrive."),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_gateway_disconnects_total",
			Help: "Connections closed by the gateway, by protocol error code."}, []string{"code"}),
		writeDelay: latency.NewHistogram("seqchat_gateway_write_delay_seconds",
			"From a live entry's routing (its gateway record's timestamp) until its frame was written to a recipient's socket."),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.framesIn, m.framesOut, m.delivered, m.fills, m.badAcks, m.historyErrors, m.settleSkips, m.disconnects, m.writeDelay)
	}
	return m
}
