package sequencer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// restoreTimeout bounds reading a state partition on assignment.
const restoreTimeout = 5 * time.Minute

// rebeatWindow: conversations whose head was written this long before a
// restore are in the new owner's first heartbeat: the previous owner may
// have died before beating them (a session timeout and a restore later).
const rebeatWindow = 30 * time.Second

// maxHeadsPerBeat keeps a heartbeat record far below Kafka's 1 MB default.
const maxHeadsPerBeat = 4096

// worker owns one raw partition for the length of a group session: the only
// writer of its conversations' seqs.
type worker struct {
	s       *Sequencer
	p       int32
	log     *slog.Logger
	machine *Machine
	// heads: the last seq of each conversation sequenced since the last
	// heartbeat, written at the first unit HeadsInterval after it.
	heads    map[string]headSeq
	lastBeat time.Time
	// ctx is the session's.
	ctx context.Context
	// fence: the partition was handed over to a newer generation; every
	// record is forwarded to it, nothing is sequenced here any more.
	fence *imv1.FenceEntry
	// importing: a partition of a later generation that has not imported
	// its conversations' state yet; its first batch does.
	importing bool
}

// headSeq is a conversation's last seq and the epoch it belongs to.
type headSeq struct{ seq, epoch uint64 }

// startWorker restores the partition's state: everything committed by its
// earlier owners, nothing of what they left uncommitted.
func (s *Sequencer) startWorker(sess *kafkawire.Session, p int32, txns *kafkawire.Txns) (kafkawire.TxnPartition, error) {
	start := time.Now()
	w := &worker{s: s, p: p, log: s.log.With("partition", p), heads: map[string]headSeq{}, ctx: sess.Context()}
	if err := w.restore(sess.Context(), txns); err != nil {
		return nil, err
	}
	s.metrics.partitions.Inc()
	s.metrics.restoreSeconds.Observe(time.Since(start).Seconds())
	w.log.Info("partition restored", "took", time.Since(start).Round(time.Millisecond), "held", w.machine.Held(),
		"fenced", w.fence != nil, "importing", w.importing)
	return w, nil
}

// Close: the partition was revoked or the session ended.
func (w *worker) Close() { w.s.metrics.partitions.Dec() }

// restore reads the partition's state store up to a marker this worker
// commits first: everything committed before the marker (every earlier
// owner's state) is then in the machine, and nothing of an aborted one.
func (w *worker) restore(ctx context.Context, txns *kafkawire.Txns) error {
	tok := make([]byte, 12)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	token := hex.EncodeToString(tok)
	marker, err := imv1.Marshal(&imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Marker{Marker: &imv1.RestoreMarker{Token: token}}})
	if err != nil {
		return err
	}
	stateTopic := w.s.topics.SequencerState
	if err := <-txns.Submit(kafkawire.Unit{Offset: -1, Messages: []*sarama.ProducerMessage{{Topic: stateTopic, Partition: w.p,
		Key: sarama.StringEncoder(markerKey), Value: sarama.ByteEncoder(marker)}}}); err != nil {
		return fmt.Errorf("partition %d: restore marker: %w", w.p, err)
	}

	pc, err := w.s.state.ConsumePartition(stateTopic, w.p, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("partition %d: read state: %w", w.p, err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	// The latest value of every key, undecoded: most entries are
	// overwritten later (a conversation's head at every batch), so only
	// the survivors are decoded, once the marker is reached.
	latest := map[string][]byte{}
	recentHeads := map[string]bool{} // head keys written within rebeatWindow
	cutoff := time.Now().Add(-rebeatWindow)
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("partition %d: restore did not reach its marker: %w", w.p, ctx.Err())
		case err := <-pc.Errors():
			return fmt.Errorf("partition %d: read state: %w", w.p, err)
		case m := <-pc.Messages():
			key := string(m.Key)
			if key != markerKey {
				if len(m.Value) == 0 {
					delete(latest, key)
				} else {
					latest[key] = m.Value
				}
				if strings.HasSuffix(key, headSuffix) && m.Timestamp.After(cutoff) {
					recentHeads[key] = true
				}
				continue
			}
			e := &imv1.StateEntry{}
			if err := imv1.Unmarshal(m.Value, e); err != nil {
				return fmt.Errorf("partition %d: state entry at offset %d: %w", w.p, m.Offset, err)
			}
			if e.GetMarker().GetToken() != token {
				continue
			}
			if err := w.takeOwnEntries(latest); err != nil {
				return err
			}
			entries := make(map[string]*imv1.StateEntry, len(latest))
			for k, v := range latest {
				e := &imv1.StateEntry{}
				if err := imv1.Unmarshal(v, e); err != nil {
					// A state entry this code cannot read: sequencing on
					// without it could reuse seqs, so stop and say which.
					return fmt.Errorf("partition %d: state entry %q: %w", w.p, k, err)
				}
				entries[k] = e
				if h := e.GetHead(); h != nil && recentHeads[k] {
					w.heads[h.ConversationId] = headSeq{h.LastSeq, h.Epoch}
				}
			}
			if w.machine, err = Restore(w.s.cfg.Machine, entries); err != nil {
				return err
			}
			w.machine.RestartHolds(time.Now())
			return nil
		}
	}
}

// takeOwnEntries takes the partition's fence and import record out of the
// restored entries (they are not conversation state): a fenced partition
// forwards; a partition of a later generation without an import record
// imports at its first batch.
func (w *worker) takeOwnEntries(latest map[string][]byte) error {
	if v, ok := latest[fenceKey]; ok {
		e := &imv1.StateEntry{}
		if err := imv1.Unmarshal(v, e); err != nil {
			return fmt.Errorf("partition %d: fence entry: %w", w.p, err)
		}
		if e.GetFence() == nil {
			return fmt.Errorf("partition %d: the fence key holds a %T", w.p, e.Entry)
		}
		w.fence = e.GetFence()
		delete(latest, fenceKey)
	}
	_, imported := latest[importedKey]
	delete(latest, importedKey)
	w.importing = w.s.cfg.Generation > generation.First && !imported && w.fence == nil
	return nil
}

// Process applies a batch and returns its unit: the output on the
// sequenced topic, the state changes, the dead letters and the consumed
// offset, all to commit in one transaction.
func (w *worker) Process(b kafkawire.Batch) (kafkawire.Unit, bool, error) {
	var imported []*sarama.ProducerMessage
	if w.importing {
		var err error
		if imported, err = w.importState(w.ctx); err != nil {
			return kafkawire.Unit{}, false, err
		}
		w.importing = false
	}
	now := time.Now()
	var dead, forwarded []*sarama.ProducerMessage
	var fenced *imv1.FenceEntry
	for _, m := range b.Records {
		if w.fence == nil && string(m.Key) == generation.FenceKey {
			f, err := w.fenceFrom(m)
			if err == nil && f != nil {
				w.fence, fenced = f, f
				w.log.Info("partition handed over: forwarding from here on", "offset", m.Offset,
					"to_generation", f.Generation, "to_partitions", f.Partitions)
			}
			if err == nil {
				continue
			}
			dl, err := w.deadLetter(m, err, now)
			if err != nil {
				return kafkawire.Unit{}, false, err
			}
			dead = append(dead, dl)
			continue
		}
		if w.fence != nil {
			if string(m.Key) != generation.FenceKey { // a second fence is dropped
				forwarded = append(forwarded, w.forward(m))
			}
			continue
		}
		rec, err := decodeRaw(m)
		if err != nil {
			dl, err := w.deadLetter(m, err, now)
			if err != nil {
				return kafkawire.Unit{}, false, err
			}
			dead = append(dead, dl)
			continue
		}
		w.machine.Apply(rec, now)
	}
	// Holds expire only when the partition is caught up: while there is a
	// backlog (after a restart, say) the missing predecessor may be in it,
	// however long ago its successor was held.
	if b.CaughtUp() && w.fence == nil { // a fenced partition's holds moved on with its state
		w.machine.Expire(now)
	}
	out, changes := w.machine.Take()
	beat, err := w.heartbeat(out, now)
	if err != nil {
		return kafkawire.Unit{}, false, err
	}
	if len(b.Records) == 0 && len(out) == 0 && len(changes) == 0 && len(beat) == 0 && len(imported) == 0 {
		return kafkawire.Unit{}, false, nil
	}
	msgs, err := w.messages(out, changes, dead)
	if err != nil {
		return kafkawire.Unit{}, false, err
	}
	// The imported state goes before what this batch changed in it, the
	// fence after it.
	msgs = append(imported, msgs...)
	if fenced != nil {
		fm, err := w.fenceMessages(fenced)
		if err != nil {
			return kafkawire.Unit{}, false, err
		}
		msgs = append(msgs, fm...)
	}
	msgs = append(msgs, forwarded...)
	msgs = append(msgs, beat...)
	// The offset is committed even by an idle tick's unit (held sends
	// released, nothing consumed): it is what fences the unit if this
	// instance lost the partition meanwhile (a zombie resumed from a
	// pause released held sends the new owner had already sequenced:
	// TestFailoverZombie).
	u := kafkawire.Unit{Messages: msgs, Topic: w.s.topics.Raw, Partition: w.p, Offset: b.Next}
	if len(b.Records) > 0 {
		u.Committed = w.committed(b.Records)
	}
	w.s.metrics.observeBatch(len(b.Records)-len(forwarded), out, len(dead), w.machine.Held())
	if len(forwarded) > 0 {
		w.s.metrics.records.WithLabelValues("forwarded").Add(float64(len(forwarded)))
	}
	if n := w.machine.TakeIgnoredReads(); n > 0 {
		w.s.metrics.records.WithLabelValues("read_ignored").Add(float64(n))
	}
	return u, true, nil
}

// heartbeat notes the seqs of out and, once HeadsInterval has passed since
// the last one, returns the heads that changed as heartbeat records (none
// when none are due or heartbeats are off).
func (w *worker) heartbeat(out []*imv1.SequencedRecord, now time.Time) ([]*sarama.ProducerMessage, error) {
	topic := w.s.headsTopic.Load()
	if topic == nil {
		return nil, nil
	}
	for _, r := range out {
		if r.Seq > 0 {
			w.heads[r.ConversationId] = headSeq{r.Seq, r.Epoch}
		}
	}
	if len(w.heads) == 0 || now.Sub(w.lastBeat) < w.s.cfg.HeadsInterval {
		return nil, nil
	}
	var msgs []*sarama.ProducerMessage
	var sh *imv1.StreamHeads
	flush := func() error {
		b, err := imv1.Marshal(sh)
		if err == nil {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic.topic, Partition: w.p % topic.partitions, Value: sarama.ByteEncoder(b)})
		}
		return err
	}
	for conv, h := range w.heads {
		if sh == nil {
			sh = &imv1.StreamHeads{Version: imv1.Version, Partition: w.p, AtMs: now.UnixMilli(),
				Heads: make([]*imv1.ConversationHeadSeq, 0, min(len(w.heads), maxHeadsPerBeat))}
		}
		sh.Heads = append(sh.Heads, &imv1.ConversationHeadSeq{ConversationId: conv, Seq: h.seq, Epoch: h.epoch})
		if len(sh.Heads) == maxHeadsPerBeat {
			if err := flush(); err != nil {
				return nil, err
			}
			sh = nil
		}
	}
	if sh != nil {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	clear(w.heads)
	w.lastBeat = now
	return msgs, nil
}

// committed observes, once the unit's transaction committed, how long each
// raw record took from its append to the raw topic.
func (w *worker) committed(recs []*sarama.ConsumerMessage) func(time.Time) {
	stamps := make([]time.Time, len(recs))
	for i, m := range recs {
		stamps[i] = m.Timestamp
	}
	return func(at time.Time) {
		for _, t := range stamps {
			w.s.metrics.commitDelay.Observe(max(at.Sub(t), 0).Seconds())
		}
	}
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
	return &sarama.ProducerMessage{Topic: w.s.topics.DeadLetter, Partition: p, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(b)}, nil
}

// messages encodes the output, the state changes and the dead letters, in
// the order they must be written.
func (w *worker) messages(out []*imv1.SequencedRecord, changes []StateChange, dead []*sarama.ProducerMessage) ([]*sarama.ProducerMessage, error) {
	t := w.s.topics
	msgs := make([]*sarama.ProducerMessage, 0, len(out)+len(changes)+len(dead))
	for _, r := range out {
		b, err := imv1.Marshal(r)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t.Sequenced, Partition: w.p,
			Key: sarama.StringEncoder(r.ConversationId), Value: sarama.ByteEncoder(b)})
	}
	for _, c := range changes {
		m := &sarama.ProducerMessage{Topic: t.SequencerState, Partition: w.p, Key: sarama.StringEncoder(c.Key)}
		if c.Entry != nil {
			b, err := imv1.Marshal(c.Entry)
			if err != nil {
				return nil, err
			}
			m.Value = sarama.ByteEncoder(b)
		}
		msgs = append(msgs, m)
	}
	return append(msgs, dead...), nil
}
