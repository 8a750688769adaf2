package history

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Values of the op label of seqchat_history_retries_total.
const (
	opInsert     = "insert"
	opDeadLetter = "dead_letter"
)

// partition writes one claimed partition for the length of a session.
type partition struct {
	s   *Sink
	ss  *sinkSession
	log *slog.Logger
}

// batch is what one Process writes.
type batch struct {
	writes
	dead    []*sarama.ProducerMessage
	notices int
}

// writes are the rows of one partition's batch: entries, and read
// receipts (notices kept in read_positions).
type writes struct {
	rows  []Row
	reads []ReadRow
}

// Process writes the batch's dead letters, then its rows through the
// session's inserter, and returns once they are in: only then may the
// group mark its offsets. It fails when the session's write deadline ends
// first; the next owner reads the batch again.
func (p *partition) Process(kb kafkawire.Batch) error {
	if len(kb.Records) == 0 {
		return nil
	}
	var b batch
	for _, m := range kb.Records {
		p.add(&b, m)
	}
	p.s.waiting.Add(1)
	defer p.s.waiting.Add(-1)
	if len(b.dead) > 0 && !p.s.retry(p.ss.writeCtx, opDeadLetter, func(context.Context) error { return p.s.deadLetters.SendMessages(b.dead) }) {
		return p.unwritten(kb)
	}
	if len(b.rows) > 0 || len(b.reads) > 0 {
		if err := <-p.ss.inserter.Submit(b.writes); err != nil {
			return p.unwritten(kb)
		}
	}
	m := p.s.metrics
	m.records.WithLabelValues(outcomeEntry).Add(float64(len(b.rows)))
	m.records.WithLabelValues(outcomeNotice).Add(float64(b.notices))
	m.records.WithLabelValues(outcomeReadReceipt).Add(float64(len(b.reads)))
	m.records.WithLabelValues(outcomeDeadLetter).Add(float64(len(b.dead)))
	return nil
}

func (p *partition) unwritten(b kafkawire.Batch) error {
	p.log.Warn("partition stopped before its batch was written; the next owner reads it again",
		"records", len(b.Records), "from_offset", b.Records[0].Offset)
	return errors.New("history: the session ended before the batch was written")
}

// Close: the partition was revoked or the session ended.
func (p *partition) Close() { p.s.metrics.partitions.Dec() }

// add decodes one record into the batch: an entry becomes a row, a read
// receipt a read row, another notice is skipped, anything else becomes a
// dead letter (never a stall).
func (p *partition) add(b *batch, m *sarama.ConsumerMessage) {
	rec := &imv1.SequencedRecord{}
	err := imv1.Unmarshal(m.Value, rec)
	if err == nil {
		if r, ok := ReadRowOf(rec); ok {
			b.reads = append(b.reads, r)
			return
		}
	}
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

// insert writes the rows several partitions submitted in one insert (and
// their read receipts in another), retrying while ClickHouse fails (false:
// ctx ended first). A retry writes both again: harmless (I7).
func (s *Sink) insert(ctx context.Context, parts []writes) error {
	var rows []Row
	var reads []ReadRow
	for _, w := range parts {
		rows = append(rows, w.rows...)
		reads = append(reads, w.reads...)
	}
	start := time.Now()
	if !s.retry(ctx, opInsert, func(ctx context.Context) error {
		if err := s.cfg.Store.Insert(ctx, rows); err != nil {
			return err
		}
		return s.cfg.Store.InsertReads(ctx, reads)
	}) {
		return errors.New("history: insert not written before the session's deadline")
	}
	if len(rows) == 0 {
		return nil
	}
	m := s.metrics
	m.insertSeconds.Observe(time.Since(start).Seconds())
	m.batchRows.Observe(float64(len(rows)))
	m.rows.Add(float64(len(rows)))
	newest := rows[len(rows)-1].SequencedAtMs
	for _, r := range rows {
		newest = max(newest, r.SequencedAtMs)
	}
	m.delay.Observe(max(time.Since(time.UnixMilli(int64(newest))).Seconds(), 0))
	return nil
}

// retry runs op until it succeeds (true) or ctx ends (false), each attempt
// bounded by InsertTimeout, with a bounded exponential backoff in between.
func (s *Sink) retry(ctx context.Context, op string, do func(context.Context) error) bool {
	cfg := s.cfg
	b := backoff.New(cfg.RetryMin, cfg.RetryMax)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, cfg.InsertTimeout)
		err := do(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.failing.Add(-1)
				s.log.Info("recovered", "op", op, "attempts", attempt)
			}
			return true
		}
		if attempt == 1 {
			s.failing.Add(1)
		}
		s.metrics.retries.WithLabelValues(op).Inc()
		s.log.Warn("write failed; retrying the same batch", "op", op, "attempt", attempt, "backoff", b.Next(), "err", err)
		if !b.Wait(ctx) {
			s.failing.Add(-1)
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
