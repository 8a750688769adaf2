package kafkawire

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
)

// PassedRecord reports how far group has got on topic/p relative to the
// first record with key at or after the group's last committed record: its
// offset, and whether the group's committed offset is past it. It reads
// the partition read_committed from there and waits until such a record
// comes (or ctx ends). A repartition's end record (the last record its
// sequencer commits to a sequenced partition) is how the next generation
// learns that a reader of the old one has everything.
func PassedRecord(ctx context.Context, k Config, admin sarama.ClusterAdmin, group, topic string, p int32, key string) (end int64, passed bool, err error) {
	committed, err := CommittedOffset(admin, group, topic, p)
	if err != nil {
		return 0, false, err
	}
	// Nothing is committed to p after the record, so it is at or after
	// the last record the group committed (committed-1).
	from := sarama.OffsetOldest
	if committed > 0 {
		from = committed - 1
	}
	consumer, err := sarama.NewConsumer(k.BrokerList(), k.ConsumerGroupConfig())
	if err != nil {
		return 0, false, err
	}
	defer consumer.Close()
	pc, err := ConsumePartition(ctx, consumer, topic, p, from)
	if err != nil {
		return 0, false, fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case err := <-pc.Errors():
			return 0, false, fmt.Errorf("read %s/%d: %w", topic, p, err)
		case m := <-pc.Messages():
			if string(m.Key) == key {
				return m.Offset, committed > m.Offset, nil
			}
		}
	}
}

// CommittedOffset is group's committed offset of topic/p, -1 if none.
func CommittedOffset(admin sarama.ClusterAdmin, group, topic string, p int32) (int64, error) {
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {p}})
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	b := resp.GetBlock(topic, p)
	if b == nil {
		return -1, nil
	}
	if b.Err != sarama.ErrNoError {
		return 0, fmt.Errorf("offset of group %s on %s/%d: %w", group, topic, p, b.Err)
	}
	return b.Offset, nil
}
