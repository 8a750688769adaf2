package gateway

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/latency"
)

// Values of the reason label of seqchat_gateway_sends_refused_total.
const (
	refusedOverload    = "overload"
	refusedRateLimited = "rate_limited"
	refusedOrder       = "order"
)

type metrics struct {
	connections                                    prometheus.Gauge
	framesIn, framesOut, delivered, fills, badAcks prometheus.Counter
	historyErrors, settleSkips, settledPartitions  prometheus.Counter
	sharedReads, stalls, resets                    prometheus.Counter
	resumes                                        *prometheus.CounterVec
	disconnects                                    *prometheus.CounterVec
	writeDelay                                     prometheus.Histogram
	refused                                        *prometheus.CounterVec
	connectionsRefused                             *prometheus.CounterVec
	pipelineDelay, admissionRate                   func() float64 // set by the gateway
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_gateway_" + name, Help: help})
	}
	m := &metrics{
		connections:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_gateway_connections", Help: "Authenticated connections."}),
		framesIn:          c("frames_in_total", "Client frames read."),
		framesOut:         c("frames_out_total", "Frames queued to clients."),
		delivered:         c("delivered_total", "Entries delivered in order to devices."),
		fills:             c("history_reads_total", "History reads for catch-up and gap fills."),
		badAcks:           c("bad_acks_total", "Acks beyond what was delivered, ignored."),
		historyErrors:     c("history_errors_total", "Failed history reads (retried)."),
		settleSkips:       c("settle_skips_total", "Conversations the settle pass did not read: live entries already arrive."),
		settledPartitions: c("settled_partitions_total", "Sequenced partitions settled for a new connection once history stored them up to the fanout's RoutingStarted notice."),
		sharedReads:       c("shared_reads_total", "Catch-up reads answered by a history read shared with other members lacking the same entries."),
		resets:            c("resets_total", "Conversations a device was told to reset: it held them at another epoch than their stream's."),
		stalls:            c("stalls_repaired_total", "Conversations a device stayed behind the sequencer's head in for StallAfter, then read from history up to it."),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_gateway_resumes_total",
			Help: "Hellos resumed, by path: heads (from the fanout's notices; history read only for what is missing) or history (it lists conversations and positions)."}, []string{"path"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_gateway_disconnects_total",
			Help: "Connections closed by the gateway, by protocol error code."}, []string{"code"}),
		writeDelay: latency.NewHistogram("seqchat_gateway_write_delay_seconds",
			"From a live entry's routing (its gateway record's timestamp) until its frame was written to a recipient's socket."),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_gateway_sends_refused_total",
			Help: "Sends refused before ingest, by reason: overload (the pipeline is behind), rate_limited, order (behind a refused send)."}, []string{"reason"}),
	}
	m.connectionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_gateway_connections_refused_total",
		Help: "New connections refused before welcome, by limit: connections (MaxConnections, from the open-file limit), memory, per_user."}, []string{"reason"})
	for _, r := range []string{refusedOverload, refusedRateLimited, refusedOrder} {
		m.refused.WithLabelValues(r)
	}
	for _, p := range []string{"heads", "history"} {
		m.resumes.WithLabelValues(p)
	}
	for _, r := range []string{refusedConnections, refusedMemory, refusedPerUser} {
		m.connectionsRefused.WithLabelValues(r)
	}
	delay := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_gateway_pipeline_delay_seconds",
		Help: "How far behind the pipeline is, as the gateway's admission measures it (p90 of live entries' delay from ingest over the last 250 ms)."},
		func() float64 {
			if m.pipelineDelay == nil {
				return 0
			}
			return m.pipelineDelay()
		})
	rate := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_gateway_admission_rate",
		Help: "Sends per second admission lets in now (+Inf: no limit); it is cut while the pipeline delay stays over the limit and grows back once it is under half of it."},
		func() float64 {
			if m.admissionRate == nil {
				return math.Inf(1)
			}
			return m.admissionRate()
		})
	if reg != nil {
		reg.MustRegister(m.connections, m.framesIn, m.framesOut, m.delivered, m.fills, m.badAcks, m.historyErrors, m.settleSkips, m.settledPartitions, m.sharedReads, m.stalls, m.resets, m.resumes, m.disconnects, m.writeDelay, m.refused, m.connectionsRefused, delay, rate)
	}
	return m
}

// registerLimits exports the connection limits and what uses them up
// (file descriptors are the process collector's process_open_fds and
// process_max_fds).
func (m *metrics) registerLimits(reg prometheus.Registerer, l *connLimits) {
	if reg == nil {
		return
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_gateway_" + name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("connection_limit", "MaxConnections in effect (0: none).", func() float64 { return float64(l.maxConns) }),
		gauge("open_connections", "Connections open, hellos in progress included (what MaxConnections bounds).", func() float64 {
			l.mu.Lock()
			defer l.mu.Unlock()
			return float64(l.open)
		}),
		gauge("connections_per_user_limit", "MaxConnectionsPerUser in effect (0: none).", func() float64 { return float64(l.perUser) }),
		gauge("memory_limit_bytes", "MemoryLimit in effect (0: none).", func() float64 { return float64(l.maxMemory) }),
		gauge("memory_bytes", "Bytes the Go runtime holds from the OS (what MemoryLimit bounds).", func() float64 { return float64(processMemory()) }),
	)
}
