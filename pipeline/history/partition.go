package history

import (
	"context"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Values of the op label of seqchat_history_retries_total.
const (
	opInsert     = "insert"
	opDeadLetter = "dead_letter"
)

// partition writes one claimed partition for the length of a session.
type partition struct {
	s     *Sink
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	log   *slog.Logger
	lag   prometheus.Gauge
}

// batch is what one insert and one commit cover.
type batch struct {
	rows    []Row
	dead    []*sarama.ProducerMessage
	notices int
	records int
	first   int64 // the first record's offset
	next    int64 // the offset to commit: the last record's + 1
}

// run writes batches until the session ends. It reads nothing more while
// a batch waits for ClickHouse, so memory stays bounded (the batch plus
// sarama's fetch buffer) and offsets stay in order.
func (p *partition) run() {
	for {
		b, more := p.collect()
		written := b.records == 0 || p.flush(b)
		p.s.metrics.pending.Sub(float64(b.records))
		if !written {
			p.log.Warn("partition stopped before its last batch was written; the next owner reads it again",
				"records", b.records, "from_offset", b.first)
			return
		}
		if !more {
			return
		}
	}
}

// collect reads up to BatchMaxRows records, waiting at most BatchMaxWait
// after the first. more is false when the session is ending.
func (p *partition) collect() (b batch, more bool) {
	cfg := p.s.cfg
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var deadline <-chan time.Time
	for b.records < cfg.BatchMaxRows {
		select {
		case m, ok := <-p.claim.Messages():
			if !ok {
				return b, false
			}
			if b.records == 0 {
				timer.Reset(cfg.BatchMaxWait)
				deadline = timer.C
			}
			p.add(&b, m)
		case <-deadline:
			return b, true
		case <-p.sess.Context().Done():
			return b, false
		}
	}
	return b, true
}

// add decodes one record into the batch: an entry becomes a row, a notice
// is skipped, anything else becomes a dead letter (never a stall).
func (p *partition) add(b *batch, m *sarama.ConsumerMessage) {
	if b.records == 0 {
		b.first = m.Offset
	}
	b.records++
	p.s.metrics.pending.Inc()
	b.next = m.Offset + 1
	rec := &imv1.SequencedRecord{}
	err := imv1.Unmarshal(m.Value, rec)
	if err == nil && IsNotice(rec) {
		b.notices++
		return
	}
	var row Row
	if err == nil {
		row, err = RowOf(rec)
	}
	if err == nil {
		b.rows = append(b.rows, row)
		return
	}
	dl, merr := p.deadLetter(m, err)
	if merr != nil { // cannot happen with the current version; keep the partition going
		p.log.Error("cannot encode dead letter; skipping record", "offset", m.Offset, "err", merr)
		return
	}
	p.log.Warn("dead-lettering sequenced record", "offset", m.Offset, "reason", err)
	b.dead = append(b.dead, dl)
}

func (p *partition) deadLetter(m *sarama.ConsumerMessage, reason error) (*sarama.ProducerMessage, error) {
	v, err := imv1.Marshal(&imv1.DeadLetter{
		Version: imv1.Version, SourceTopic: m.Topic, SourcePartition: m.Partition, SourceOffset: m.Offset,
		Key: m.Key, Value: m.Value, Reason: reason.Error(), Stage: "history", AtMs: time.Now().UnixMilli(),
	})
	if err != nil {
		return nil, err
	}
	n := p.s.dlqPartitions
	msg := &sarama.ProducerMessage{Topic: p.s.cfg.Topics.DeadLetter, Partition: m.Partition % n, Value: sarama.ByteEncoder(v)}
	if len(m.Key) > 0 {
		msg.Key = sarama.ByteEncoder(m.Key)
		msg.Partition = int32(kafkawire.PartitionFor(m.Key, int(n)))
	}
	return msg, nil
}

// flush writes the dead letters and the rows, retrying while they fail,
// then marks the batch's offset for commit. false means the session ended
// (plus ShutdownTimeout) before the batch was written: nothing was marked.
func (p *partition) flush(b batch) bool {
	ctx, cancel := graceContext(p.sess.Context(), p.s.cfg.ShutdownTimeout)
	defer cancel()
	if len(b.dead) > 0 && !p.retry(ctx, opDeadLetter, func(context.Context) error { return p.s.deadLetters.SendMessages(b.dead) }) {
		return false
	}
	start := time.Now()
	if !p.retry(ctx, opInsert, func(ctx context.Context) error { return p.s.cfg.Store.Insert(ctx, b.rows) }) {
		return false
	}
	m := p.s.metrics
	if len(b.rows) > 0 {
		m.insertSeconds.Observe(time.Since(start).Seconds())
		m.batchRows.Observe(float64(len(b.rows)))
		m.rows.Add(float64(len(b.rows)))
		newest := b.rows[len(b.rows)-1].SequencedAtMs
		m.delay.Observe(max(time.Since(time.UnixMilli(int64(newest))).Seconds(), 0))
	}
	// Only now may the offset move: commitLoop and Cleanup commit it.
	p.sess.MarkOffset(p.claim.Topic(), p.claim.Partition(), b.next, "")
	m.records.WithLabelValues(outcomeEntry).Add(float64(len(b.rows)))
	m.records.WithLabelValues(outcomeNotice).Add(float64(b.notices))
	m.records.WithLabelValues(outcomeDeadLetter).Add(float64(len(b.dead)))
	p.lag.Set(float64(max(p.claim.HighWaterMarkOffset()-b.next, 0)))
	return true
}

// retry runs op until it succeeds (true) or ctx ends (false), each attempt
// bounded by InsertTimeout, with a bounded exponential backoff in between.
func (p *partition) retry(ctx context.Context, op string, do func(context.Context) error) bool {
	cfg := p.s.cfg
	b := newBackoff(cfg.RetryMin, cfg.RetryMax)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, cfg.InsertTimeout)
		err := do(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				p.s.retrying.Add(-1)
				p.s.metrics.retrying.Dec()
				p.log.Info("recovered", "op", op, "attempts", attempt)
			}
			return true
		}
		if attempt == 1 {
			p.s.retrying.Add(1)
			p.s.metrics.retrying.Inc()
		}
		p.s.metrics.retries.WithLabelValues(op).Inc()
		p.log.Warn("write failed; retrying the same batch", "op", op, "attempt", attempt, "backoff", b.next, "err", err)
		if !b.wait(ctx) {
			p.s.retrying.Add(-1)
			p.s.metrics.retrying.Dec()
			return false
		}
	}
}

// graceContext ends grace after parent does: a stopping partition still
// gets to write the batch in hand, but not forever.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}
