package sequencer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// The hand-over of conversations between generations of the partitioned
// topics (docs/architecture.md, Repartitioning): a partition of the older
// generation is fenced by a fence record in its raw topic and forwards
// every later record to the newer one; a partition of the newer
// generation imports its conversations' state from the older one's state
// partitions, as they were at their fences, before it sequences anything.

// importWaitLog is how often a partition waiting for a fence says so.
const importWaitLog = 5 * time.Second

// fenceFrom reads a fence record. nil, nil: a fence of this generation or
// an older one, dropped (imctl wrote it twice, or a stray).
func (w *worker) fenceFrom(m *sarama.ConsumerMessage) (*imv1.FenceEntry, error) {
	f := &imv1.GenerationFence{}
	if err := imv1.Unmarshal(m.Value, f); err != nil {
		return nil, err
	}
	if f.Partitions < 1 || f.Partitions > generation.MaxPartitions {
		return nil, fmt.Errorf("fence to generation %d with %d partitions", f.Generation, f.Partitions)
	}
	if f.Generation <= w.s.cfg.Generation {
		return nil, nil
	}
	return &imv1.FenceEntry{Generation: f.Generation, Partitions: f.Partitions, RawOffset: m.Offset}, nil
}

// fenceMessages commit the fence, in the transaction that consumes the
// fence record: the state entry, and an end record on the sequenced
// partition (key generation.FenceKey, an empty notice that readers skip),
// which is the partition's last committed record: the next generation's
// fanout waits until the old fanout has committed past it.
func (w *worker) fenceMessages(f *imv1.FenceEntry) ([]*sarama.ProducerMessage, error) {
	b, err := imv1.Marshal(&imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Fence{Fence: f}})
	if err != nil {
		return nil, err
	}
	end, err := imv1.Marshal(&imv1.SequencedRecord{Version: imv1.Version})
	if err != nil {
		return nil, err
	}
	return []*sarama.ProducerMessage{
		{Topic: w.s.topics.SequencerState, Partition: w.p, Key: sarama.StringEncoder(fenceKey), Value: sarama.ByteEncoder(b)},
		{Topic: w.s.topics.Sequenced, Partition: w.p, Key: sarama.StringEncoder(generation.FenceKey), Value: sarama.ByteEncoder(end)},
	}, nil
}

// forward sends a raw record that came after the fence, unchanged, to the
// raw topic of the generation that took over, on the partition its key
// has there; it goes in the transaction that consumes it: exactly once.
func (w *worker) forward(m *sarama.ConsumerMessage) *sarama.ProducerMessage {
	f := w.fence
	headers := make([]sarama.RecordHeader, 0, len(m.Headers))
	for _, h := range m.Headers {
		if h != nil {
			headers = append(headers, *h)
		}
	}
	return &sarama.ProducerMessage{Topic: generation.Topics(w.s.cfg.Topics, f.Generation).Raw,
		Partition: int32(kafkawire.PartitionFor(m.Key, int(f.Partitions))),
		Key:       sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value), Headers: headers}
}

// importState builds the partition's state from the previous generation's
// state partitions that can hold its conversations, each read up to its
// fence (waiting for it), keeping the entries of the conversations this
// partition owns. It replaces the (empty) machine and returns the entries
// and the import record to commit in the partition's first transaction,
// whose offset commit fences an instance that lost the partition meanwhile.
func (w *worker) importState(ctx context.Context) ([]*sarama.ProducerMessage, error) {
	start := time.Now()
	prev := w.s.cfg.Generation - 1
	topic := generation.Topics(w.s.cfg.Topics, prev).SequencerState
	if w.s.prevPartitions == 0 {
		return nil, fmt.Errorf("partition %d never imported and generation %d's state topic %s is gone (deleted before this generation imported?)", w.p, prev, topic)
	}
	sources := generation.Sources(w.p, w.s.prevPartitions, w.s.partitions)
	kept := map[string][]byte{}
	for _, src := range sources {
		if err := w.readToFence(ctx, topic, src, kept); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(kept))
	for k := range kept {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a conversation's entries together, in a stable order
	entries := make(map[string]*imv1.StateEntry, len(kept))
	convs := map[string]bool{}
	msgs := make([]*sarama.ProducerMessage, 0, len(kept)+1)
	for _, k := range keys {
		e := &imv1.StateEntry{}
		if err := imv1.Unmarshal(kept[k], e); err != nil {
			return nil, fmt.Errorf("partition %d: imported state entry %q: %w", w.p, k, err)
		}
		entries[k] = e
		convs[conversationOfKey(k)] = true
		msgs = append(msgs, &sarama.ProducerMessage{Topic: w.s.topics.SequencerState, Partition: w.p,
			Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(kept[k])})
	}
	machine, err := Restore(w.s.cfg.Machine, entries)
	if err != nil {
		return nil, err
	}
	machine.RestartHolds(time.Now())
	rec, err := imv1.Marshal(&imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Imported{Imported: &imv1.ImportEntry{
		FromGeneration: prev, FromPartitions: w.s.prevPartitions, Sources: sources,
		Conversations: uint64(len(convs)), Entries: uint64(len(entries))}}})
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, &sarama.ProducerMessage{Topic: w.s.topics.SequencerState, Partition: w.p,
		Key: sarama.StringEncoder(importedKey), Value: sarama.ByteEncoder(rec)})
	w.machine = machine
	w.log.Info("partition imported", "from_generation", prev, "sources", sources, "conversations", len(convs),
		"entries", len(entries), "took", time.Since(start).Round(time.Millisecond))
	return msgs, nil
}

// readToFence reads a state partition of the previous generation
// read_committed from its start up to its fence entry, waiting for the
// fence if it is not committed yet, and keeps in kept the latest value of
// every key of a conversation this partition owns. Everything the previous
// generation committed for that partition is before its fence, and nothing
// but restore markers after it.
func (w *worker) readToFence(ctx context.Context, topic string, p int32, kept map[string][]byte) error {
	// A consumer of its own: the workers of q and q+n import from the same
	// source partition at once when n divides m, and one consumer reads a
	// partition only once at a time.
	consumer, err := sarama.NewConsumer(w.s.cfg.Kafka.BrokerList(), w.s.stateConfig())
	if err != nil {
		return fmt.Errorf("partition %d: import consumer: %w", w.p, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("partition %d: read %s/%d: %w", w.p, topic, p, err)
	}
	defer pc.Close()
	tick := time.NewTicker(importWaitLog)
	defer tick.Stop()
	read := 0
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("partition %d: import from %s/%d: %w", w.p, topic, p, ctx.Err())
		case <-tick.C:
			w.log.Info("import waits for the previous generation's fence", "source", topic, "source_partition", p, "read", read)
		case err := <-pc.Errors():
			return fmt.Errorf("partition %d: read %s/%d: %w", w.p, topic, p, err)
		case m := <-pc.Messages():
			read++
			key := string(m.Key)
			if key == fenceKey {
				e := &imv1.StateEntry{}
				if err := imv1.Unmarshal(m.Value, e); err != nil {
					return fmt.Errorf("partition %d: fence of %s/%d: %w", w.p, topic, p, err)
				}
				if f := e.GetFence(); f.GetGeneration() != w.s.cfg.Generation || f.GetPartitions() != w.s.partitions {
					return fmt.Errorf("partition %d: %s/%d is fenced for generation %d of %d partitions, not %d of %d",
						w.p, topic, p, f.GetGeneration(), f.GetPartitions(), w.s.cfg.Generation, w.s.partitions)
				}
				return nil
			}
			conv := conversationOfKey(key)
			if conv == "" || int32(kafkawire.PartitionFor([]byte(conv), int(w.s.partitions))) != w.p {
				continue
			}
			if len(m.Value) == 0 {
				delete(kept, key)
			} else {
				kept[key] = m.Value
			}
		}
	}
}
