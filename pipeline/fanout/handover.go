package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// The fanout's part of a repartition (docs/architecture.md,
// Repartitioning): a partition of a later generation routes nothing before
// it holds the membership periods and heads of its conversations as the
// previous generation's fanout left them, once that one routed everything
// its sequencers wrote before their fences.

// importPoll is how often an import looks again at what it waits for.
const importPoll = 200 * time.Millisecond

// importPartition imports partition q's conversations from every source
// partition of the previous generation, once that one's fanout routed
// everything of it, then writes the import marker last: a crash before it
// imports again, with the same values.
func (f *Fanout) importPartition(ctx context.Context, q int32) error {
	start := time.Now()
	prev := f.cfg.Generation - 1
	topics := generation.Topics(f.cfg.Topics, prev)
	group := generation.GroupID(f.cfg.GroupID, prev)
	if f.prevPartitions == 0 {
		return fmt.Errorf("partition %d never imported and generation %d's topics are gone (deleted before this generation imported?)", q, prev)
	}
	sources := generation.Sources(q, f.prevPartitions, f.partitions)
	log := f.log.With("partition", q, "from_generation", prev)
	var msgs []*sarama.ProducerMessage
	complete := true
	for _, p := range sources {
		if err := f.awaitRouted(ctx, log, group, topics.Sequenced, p); err != nil {
			return err
		}
		kept, srcComplete, err := f.readMembers(ctx, topics.FanoutMembers, p, q)
		if err != nil {
			return err
		}
		complete = complete && srcComplete
		keys := make([]string, 0, len(kept))
		for k := range kept {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: f.topics.FanoutMembers, Partition: q,
				Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(kept[k])})
		}
	}
	var markers []*imv1.FanoutMembership
	if complete { // heads known from the first record of every source
		markers = append(markers, &imv1.FanoutMembership{Version: imv1.Version, HeadsComplete: true})
	}
	markers = append(markers, &imv1.FanoutMembership{Version: imv1.Version}) // the import marker
	for i, fm := range markers {
		b, err := imv1.Marshal(fm)
		if err != nil {
			return err
		}
		k := key(fm)
		if i == len(markers)-1 {
			k = generation.ImportedKey
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: f.topics.FanoutMembers, Partition: q,
			Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(b)})
	}
	if err := f.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("partition %d: write the import: %w", q, err)
	}
	log.Info("partition imported", "sources", sources, "records", len(msgs)-len(markers), "heads_complete", complete,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// awaitRouted waits until the previous generation's fanout group has
// committed partition p of its sequenced topic past the end record its
// sequencer wrote there with the fence (generation.FenceKey): then every
// entry of p was routed and its periods persisted. The end record is the
// partition's last committed record, so the group's offset passes it
// however the partition ends (a transaction aborted after it leaves
// records no consumer gets, and a stable end that no committed offset
// reaches).
func (f *Fanout) awaitRouted(ctx context.Context, log *slog.Logger, group, topic string, p int32) error {
	admin, err := f.cfg.Kafka.NewAdmin()
	if err != nil {
		return err
	}
	defer admin.Close()
	end, passed, err := kafkawire.PassedRecord(ctx, f.cfg.Kafka, admin, group, topic, p, generation.FenceKey)
	if err != nil {
		return err
	}
	lastLog := time.Now()
	for !passed {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(importPoll):
		}
		c, err := kafkawire.CommittedOffset(admin, group, topic, p)
		if err != nil {
			return err
		}
		passed = c > end
		if !passed && time.Since(lastLog) > 5*time.Second {
			log.Info("import waits for the previous generation's fanout", "source", topic, "source_partition", p,
				"committed", c, "end_record", end)
			lastLog = time.Now()
		}
	}
	return nil
}

// readMembers reads partition p of the previous generation's membership
// topic to its end and keeps the latest record of each key of a
// conversation that partition q owns; complete: p had its heads-complete
// marker.
func (f *Fanout) readMembers(ctx context.Context, topic string, p, q int32) (map[string][]byte, bool, error) {
	kept := map[string][]byte{}
	complete := false
	end, err := kafkawire.NewestOffset(ctx, f.offsets, topic, p)
	if err != nil || end == 0 {
		return kept, false, err
	}
	consumer, err := sarama.NewConsumer(f.cfg.Kafka.BrokerList(), f.cfg.Kafka.ConsumerGroupConfig())
	if err != nil {
		return nil, false, err
	}
	defer consumer.Close()
	pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, false, fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case err := <-pc.Errors():
			return nil, false, fmt.Errorf("read %s/%d: %w", topic, p, err)
		case m := <-pc.Messages():
			k := string(m.Key)
			conv, _, _ := strings.Cut(k, "\x00")
			switch {
			case k == "\x00": // the heads-complete marker
				complete = len(m.Value) > 0
			case conv == "" || int32(kafkawire.PartitionFor([]byte(conv), int(f.partitions))) != q:
			case len(m.Value) == 0:
				delete(kept, k)
			default:
				kept[k] = m.Value
			}
			if m.Offset+1 >= end {
				return kept, complete, nil
			}
		}
	}
}
