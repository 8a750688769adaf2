package sequencer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// restoreTimeout bounds reading a state partition on assignment.
const restoreTimeout = 5 * time.Minute

// worker owns one raw partition for the length of a group session: the only
// writer of its conversations' seqs.
type worker struct {
	s        *Sequencer
	p        int32
	log      *slog.Logger
	producer sarama.SyncProducer
	machine  *Machine
	group    *sarama.ConsumerGroupMetadata
}

// startWorker creates the partition's transactional producer, which fences
// any previous owner (a crashed or paused instance: its open transaction is
// aborted and it can commit nothing more), then restores the state.
func (s *Sequencer) startWorker(sess sarama.ConsumerGroupSession, p int32) (*worker, error) {
	s.restoring.Add(1)
	defer s.restoring.Add(-1)
	start := time.Now()
	txnID := s.transactionalID(p)
	producer, err := sarama.NewSyncProducer(s.cfg.Kafka.BrokerList(), s.cfg.Kafka.TransactionalProducerConfig(txnID))
	if err != nil {
		return nil, fmt.Errorf("partition %d: transactional producer %s: %w", p, txnID, err)
	}
	w := &worker{
		s: s, p: p, producer: producer,
		log:   s.log.With("partition", p),
		group: sarama.NewConsumerGroupMetadataFromSession(sess, s.cfg.GroupID, nil),
	}
	if err := w.restore(sess.Context()); err != nil {
		w.close()
		return nil, err
	}
	s.metrics.restoreSeconds.Observe(time.Since(start).Seconds())
	w.log.Info("partition restored", "took", time.Since(start).Round(time.Millisecond), "held", w.machine.Held())
	return w, nil
}

func (w *worker) close() {
	if err := w.producer.Close(); err != nil {
		w.log.Warn("closing producer", "err", err)
	}
}

// restore reads the partition's state store up to a marker this worker
// commits first: everything committed before the marker (every earlier
// owner's state) is then in the machine, and nothing of an aborted one.
func (w *worker) restore(ctx context.Context) error {
	tok := make([]byte, 12)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	token := hex.EncodeToString(tok)
	marker, err := imv1.Marshal(&imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Marker{Marker: &imv1.RestoreMarker{Token: token}}})
	if err != nil {
		return err
	}
	stateTopic := w.s.cfg.Topics.SequencerState
	if err := w.transact(func() error {
		_, _, err := w.producer.SendMessage(&sarama.ProducerMessage{Topic: stateTopic, Partition: w.p,
			Key: sarama.StringEncoder(markerKey), Value: sarama.ByteEncoder(marker)})
		return err
	}); err != nil {
		return fmt.Errorf("partition %d: restore marker: %w", w.p, err)
	}

	pc, err := w.s.state.ConsumePartition(stateTopic, w.p, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("partition %d: read state: %w", w.p, err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	entries := map[string]*imv1.StateEntry{}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("partition %d: restore did not reach its marker: %w", w.p, ctx.Err())
		case err := <-pc.Errors():
			return fmt.Errorf("partition %d: read state: %w", w.p, err)
		case m := <-pc.Messages():
			key := string(m.Key)
			if len(m.Value) == 0 {
				delete(entries, key)
				continue
			}
			e := &imv1.StateEntry{}
			if err := imv1.Unmarshal(m.Value, e); err != nil {
				// A state entry this code cannot read: sequencing on without
				// it could reuse seqs, so stop and say where.
				return fmt.Errorf("partition %d: state entry at offset %d: %w", w.p, m.Offset, err)
			}
			if mk := e.GetMarker(); mk != nil {
				if mk.Token != token {
					continue
				}
				w.machine, err = Restore(w.s.cfg.Machine, entries)
				return err
			}
			entries[key] = e
		}
	}
}

// run processes the claim until the session ends.
func (w *worker) run(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	cfg := w.s.cfg
	tick := time.NewTicker(max(cfg.Machine.HoldWindow/8, 10*time.Millisecond))
	defer tick.Stop()
	rawTopic := claim.Topic()
	next := claim.InitialOffset() // the next raw offset to process
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-tick.C:
		}
		if len(batch) > 0 {
			batch = w.fill(batch, claim.Messages())
		}
		now := time.Now()
		var dead []*sarama.ProducerMessage
		for _, m := range batch {
			rec, err := decodeRaw(m)
			if err != nil {
				dl, err := w.deadLetter(m, err, now)
				if err != nil {
					return err
				}
				dead = append(dead, dl)
				continue
			}
			w.machine.Apply(rec, now)
		}
		if len(batch) > 0 {
			next = batch[len(batch)-1].Offset + 1
		}
		// Holds expire only when the partition is caught up: while there is
		// a backlog (after a restart, say) the missing predecessor may be in
		// it, however long ago its successor was held. (A zero high-water
		// mark means no fetch has answered yet.)
		if hwm := claim.HighWaterMarkOffset(); hwm > 0 && next >= hwm {
			w.machine.Expire(now)
		}
		out, changes := w.machine.Take()
		if len(batch) == 0 && len(out) == 0 && len(changes) == 0 {
			continue
		}
		start := time.Now()
		if err := w.commit(rawTopic, batch, out, changes, dead); err != nil {
			return err
		}
		w.s.metrics.observeBatch(len(batch), out, len(dead), w.machine.Held(), time.Since(start))
	}
}

// fill adds the records already waiting, up to the batch limit, waiting at
// most BatchMaxWait for more.
func (w *worker) fill(batch []*sarama.ConsumerMessage, in <-chan *sarama.ConsumerMessage) []*sarama.ConsumerMessage {
	cfg := w.s.cfg
	var deadline <-chan time.Time
	if cfg.BatchMaxWait > 0 {
		t := time.NewTimer(cfg.BatchMaxWait)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < cfg.BatchMaxRecords {
		select {
		case m, ok := <-in:
			if !ok {
				return batch
			}
			batch = append(batch, m)
			continue
		default:
		}
		if deadline == nil {
			return batch
		}
		select {
		case m, ok := <-in:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-deadline:
			return batch
		}
	}
	return batch
}

func decodeRaw(m *sarama.ConsumerMessage) (*imv1.RawRecord, error) {
	rec := &imv1.RawRecord{}
	if err := imv1.Unmarshal(m.Value, rec); err != nil {
		return nil, err
	}
	if err := CheckRaw(rec); err != nil {
		return nil, err
	}
	if string(m.Key) != rec.ConversationId {
		// Keyed elsewhere, it may sit on another partition than the rest of
		// its conversation, where another worker owns the seqs.
		return nil, fmt.Errorf("key %q is not the conversation id %q", m.Key, rec.ConversationId)
	}
	return rec, nil
}

func (w *worker) deadLetter(m *sarama.ConsumerMessage, reason error, now time.Time) (*sarama.ProducerMessage, error) {
	w.log.Warn("dead-lettering raw record", "offset", m.Offset, "reason", reason)
	b, err := imv1.Marshal(&imv1.DeadLetter{
		Version: imv1.Version, SourceTopic: m.Topic, SourcePartition: m.Partition, SourceOffset: m.Offset,
		Key: m.Key, Value: m.Value, Reason: reason.Error(), Stage: "sequencer", AtMs: now.UnixMilli(),
	})
	if err != nil {
		return nil, err
	}
	p := w.p % w.s.dlqPartitions
	if len(m.Key) > 0 {
		p = int32(kafkawire.PartitionFor(m.Key, int(w.s.dlqPartitions)))
	}
	return &sarama.ProducerMessage{Topic: w.s.cfg.Topics.DeadLetter, Partition: p, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(b)}, nil
}

// commit writes the output, the state changes, the dead letters and the
// consumed offset in one transaction: all of it becomes visible, or none.
func (w *worker) commit(rawTopic string, batch []*sarama.ConsumerMessage, out []*imv1.SequencedRecord, changes []StateChange, dead []*sarama.ProducerMessage) error {
	t := w.s.cfg.Topics
	msgs := make([]*sarama.ProducerMessage, 0, len(out)+len(changes)+len(dead))
	for _, r := range out {
		b, err := imv1.Marshal(r)
		if err != nil {
			return err
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t.Sequenced, Partition: w.p,
			Key: sarama.StringEncoder(r.ConversationId), Value: sarama.ByteEncoder(b)})
	}
	for _, c := range changes {
		m := &sarama.ProducerMessage{Topic: t.SequencerState, Partition: w.p, Key: sarama.StringEncoder(c.Key)}
		if c.Entry != nil {
			b, err := imv1.Marshal(c.Entry)
			if err != nil {
				return err
			}
			m.Value = sarama.ByteEncoder(b)
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, dead...)
	return w.transact(func() error {
		if len(msgs) > 0 {
			if err := w.producer.SendMessages(msgs); err != nil {
				return err
			}
		}
		if len(batch) == 0 {
			return nil
		}
		offsets := map[string][]*sarama.PartitionOffsetMetadata{
			rawTopic: {{Partition: w.p, Offset: batch[len(batch)-1].Offset + 1}},
		}
		return w.producer.AddOffsetsToTxnWithGroupMetadata(offsets, w.group)
	})
}

// transact runs body inside a transaction. On failure the worker is done:
// an abortable error is aborted, but a failed commit is not (a delayed
// commit may still land; the next producer's initialisation fences it).
// Either way the caller restarts from committed state.
func (w *worker) transact(body func() error) error {
	if err := w.producer.BeginTxn(); err != nil {
		return w.txnFailed("begin", err)
	}
	if err := body(); err != nil {
		if w.producer.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
			if aerr := w.producer.AbortTxn(); aerr != nil {
				w.log.Warn("abort failed", "err", aerr)
			}
		}
		return w.txnFailed("produce", err)
	}
	if err := w.producer.CommitTxn(); err != nil {
		return w.txnFailed("commit", err)
	}
	return nil
}

func (w *worker) txnFailed(step string, err error) error {
	// SendMessages reports per-record errors; say the first one's cause.
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		err = fmt.Errorf("%w (first: %w)", err, perrs[0].Err)
	}
	if fenced(err) {
		w.s.metrics.fenced.Inc()
		return fmt.Errorf("partition %d: %s: fenced by a newer owner: %w", w.p, step, err)
	}
	return fmt.Errorf("partition %d: %s transaction: %w", w.p, step, err)
}

// fenced is true for the errors that mean a newer owner took the partition:
// the producer epoch was bumped, or the group generation moved on.
func fenced(err error) bool {
	for _, e := range []error{sarama.ErrProducerFenced, sarama.ErrInvalidProducerEpoch,
		sarama.ErrIllegalGeneration, sarama.ErrUnknownMemberId, sarama.ErrFencedInstancedId} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
