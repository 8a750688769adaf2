package history

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the outcome label of seqchat_history_records_total.
const (
	outcomeEntry      = "entry"
	outcomeNotice     = "notice"
	outcomeDeadLetter = "dead_letter"
	// outcomeReadReceipt: a read receipt (a notice) stored in read_positions.
	outcomeReadReceipt = "read_receipt"
)

type sinkMetrics struct {
	records       *prometheus.CounterVec
	rows          prometheus.Counter
	insertSeconds prometheus.Histogram
	batchRows     prometheus.Histogram
	retries       *prometheus.CounterVec
	partitions    prometheus.Gauge
	retrying      prometheus.GaugeFunc
	lag           *prometheus.GaugeVec
	pending       prometheus.Gauge
	commits       prometheus.Counter
	delay         prometheus.Histogram
}

func newSinkMetrics(reg prometheus.Registerer, retrying func() float64) *sinkMetrics {
	m := &sinkMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_history_records_total",
			Help: "Sequenced records consumed and committed, by outcome: entry (stored), read_receipt (stored in read_positions), notice (skipped), dead_letter."}, []string{"outcome"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_history_rows_inserted_total",
			Help: "Rows inserted into ClickHouse (a batch written again after a crash counts again)."}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_history_insert_seconds",
			Help: "Time of one successful batch insert.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_history_batch_rows",
			Help: "Rows per insert.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_history_retries_total",
			Help: "Failed attempts that were retried, by operation: insert, dead_letter."}, []string{"op"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_history_partitions",
			Help: "Sequenced partitions this instance owns."}),
		retrying: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_history_retrying_partitions",
			Help: "Partitions waiting for ClickHouse (or the dead-letter topic) to take their batch."}, retrying),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seqchat_history_lag_records",
			Help: "Records of the partition behind its high-water mark, after each batch."}, []string{"partition"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_history_pending_records",
			Help: "Records read into batches that are not written and committed yet."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_history_offset_commits_total",
			Help: "Commits of the offsets of stored batches (every commit interval, and when a session ends)."}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_history_entry_delay_seconds",
			Help: "Time from sequencing to insert of the newest entry of each batch.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
	}
	for _, o := range []string{outcomeEntry, outcomeNotice, outcomeReadReceipt, outcomeDeadLetter} {
		m.records.WithLabelValues(o) // export zeros, so rates exist before the first one
	}
	for _, op := range []string{opInsert, opDeadLetter} {
		m.retries.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.rows, m.insertSeconds, m.batchRows, m.retries, m.partitions, m.retrying, m.lag, m.pending, m.commits, m.delay)
	}
	return m
}

type apiMetrics struct {
	requests *prometheus.CounterVec
	seconds  prometheus.Histogram
	waiting  prometheus.Gauge
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_history_api_requests_total",
			Help: "Read API requests by result: ok or the error code."}, []string{"code"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_history_api_read_seconds",
			Help: "Time to answer a successful read.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_history_api_waiting_requests",
			Help: "Requests waiting for one of the MaxConcurrentRequests slots."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.waiting)
	}
	return m
}
