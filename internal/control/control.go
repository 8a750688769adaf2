package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Spec is the control topic: compacted, one partition (one record).
func Spec(name string, layout kafkawire.Layout) kafkawire.TopicSpec {
	layout = layout.WithDefaults()
	minISR := "1"
	if layout.ReplicationFactor > 2 {
		minISR = "2"
	}
	return kafkawire.TopicSpec{Name: name, Partitions: 1, ReplicationFactor: layout.ReplicationFactor,
		Config: map[string]string{"cleanup.policy": "compact", "min.insync.replicas": minISR}}
}

// Read reads the control record of topic to its end. A deployment
// without one (the topic missing or empty) was never repartitioned: its
// record is generation 1 with the partition count of raw, generation 1's
// raw topic (stored false).
func Read(ctx context.Context, client sarama.Client, topic, raw string) (g *imv1.Generations, stored bool, err error) {
	// Whether the topic exists first: NewestOffset waits 30 s for a topic
	// created a moment ago, and before the first repartition there is none.
	var end int64
	_, err = client.Partitions(topic)
	switch {
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
	case err != nil:
		return nil, false, fmt.Errorf("partitions of %s: %w", topic, err)
	default:
		if end, err = kafkawire.NewestOffset(ctx, client, topic, 0); err != nil {
			return nil, false, fmt.Errorf("end of %s: %w", topic, err)
		}
	}
	var last []byte
	if end > 0 {
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			return nil, false, err
		}
		defer consumer.Close()
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, 0, sarama.OffsetOldest)
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", topic, err)
		}
		defer pc.Close()
	read:
		for {
			select {
			case <-ctx.Done():
				return nil, false, ctx.Err()
			case err := <-pc.Errors():
				return nil, false, fmt.Errorf("read %s: %w", topic, err)
			case m := <-pc.Messages():
				if string(m.Key) == generation.ControlKey {
					last = m.Value
				}
				if m.Offset+1 >= end {
					break read
				}
			}
		}
	}
	return decode(client, topic, raw, last)
}

// decode is the control record in value, or, when there is none, the
// initial record of a deployment with raw's partition count.
func decode(client sarama.Client, topic, raw string, value []byte) (g *imv1.Generations, stored bool, err error) {
	if len(value) > 0 {
		g, err := generation.Decode(value)
		if err != nil {
			return nil, false, fmt.Errorf("the control record of %s: %w", topic, err)
		}
		return g, true, nil
	}
	parts, err := client.Partitions(raw)
	if err != nil {
		return nil, false, fmt.Errorf("partitions of %s: %w", raw, err)
	}
	return generation.Initial(int32(len(parts))), false, nil
}

// Publish writes the control record to topic and waits for the broker's
// acknowledgement.
func Publish(k kafkawire.Config, topic string, g *imv1.Generations) error {
	b, err := generation.Encode(g)
	if err != nil {
		return err
	}
	cfg := k.IdempotentProducerConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(k.BrokerList(), cfg)
	if err != nil {
		return fmt.Errorf("control producer: %w", err)
	}
	defer prod.Close()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0,
		Key: sarama.StringEncoder(generation.ControlKey), Value: sarama.ByteEncoder(b)}); err != nil {
		return fmt.Errorf("write the control record: %w", err)
	}
	return nil
}
