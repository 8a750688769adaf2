package sequencer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/latency"
	"github.com/seqchat/seqchat/schemas/imv1"
)

type metrics struct {
	records        *prometheus.CounterVec
	commitDelay    prometheus.Histogram
	lag            *prometheus.GaugeVec
	batchRecords   prometheus.Histogram
	txnRecords     prometheus.Histogram
	txnSeconds     prometheus.Histogram
	restoreSeconds prometheus.Histogram
	held           prometheus.Gauge
	partitions     prometheus.Gauge
	fenced         prometheus.Counter
	failures       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seqchat_sequencer_records_total",
			Help: "Records by outcome: sequenced, rejected, duplicate, read_receipt, dead_letter written; read_ignored: read marks that moved nothing (not a member, not an advance)."}, []string{"outcome"}),
		commitDelay: latency.NewHistogram("seqchat_sequencer_commit_delay_seconds",
			"From a raw record's append to the raw topic (its broker timestamp) until the transaction with its sequenced entry committed."),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seqchat_sequencer_lag_records",
			Help: "Raw records behind the partition's high-water mark, after each batch."}, []string{"partition"}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_sequencer_batch_records",
			Help: "Raw records per partition batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)}),
		txnRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_sequencer_transaction_records",
			Help: "Records written per transaction (output, state changes, dead letters, markers).", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		txnSeconds: latency.NewHistogram("seqchat_sequencer_transaction_seconds",
			"Time to write and commit one transaction."),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seqchat_sequencer_restore_seconds",
			Help: "Time to fence the previous owner and restore a partition's state.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_sequencer_held_sends",
			Help: "Sends waiting for a missing predecessor, in the last partition to commit."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seqchat_sequencer_partitions",
			Help: "Raw partitions this instance owns."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_sequencer_fenced_total",
			Help: "Transactions refused because a newer owner took the partition."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "seqchat_sequencer_partition_failures_total",
			Help: "Partition workers that failed and restarted the group session."}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.commitDelay, m.lag, m.batchRecords, m.txnRecords, m.txnSeconds, m.restoreSeconds, m.held, m.partitions, m.fenced, m.failures)
	}
	return m
}

func (m *metrics) observeTxn(t kafkawire.TxnStats) {
	m.txnSeconds.Observe(t.Took.Seconds())
	m.txnRecords.Observe(float64(t.Records))
}

func (m *metrics) observeBatch(raw int, out []*imv1.SequencedRecord, dead, held int) {
	if raw > 0 {
		m.batchRecords.Observe(float64(raw))
	}
	m.held.Set(float64(held))
	for _, r := range out {
		switch {
		case r.Seq > 0:
			m.records.WithLabelValues("sequenced").Inc()
		case r.GetRejection() != nil:
			m.records.WithLabelValues("rejected").Inc()
		case r.GetReadReceipt() != nil:
			m.records.WithLabelValues("read_receipt").Inc()
		default:
			m.records.WithLabelValues("duplicate").Inc()
		}
	}
	if dead > 0 {
		m.records.WithLabelValues("dead_letter").Add(float64(dead))
	}
}
