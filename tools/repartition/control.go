package repartition

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// controlSpec is the control topic: compacted, one partition (one record).
func controlSpec(name string, layout kafkawire.Layout) kafkawire.TopicSpec {
	layout = layout.WithDefaults()
	minISR := "1"
	if layout.ReplicationFactor > 2 {
		minISR = "2"
	}
	return kafkawire.TopicSpec{Name: name, Partitions: 1, ReplicationFactor: layout.ReplicationFactor,
		Config: map[string]string{"cleanup.policy": "compact", "min.insync.replicas": minISR}}
}

// readControl reads the control record. A deployment without one (the
// topic missing or empty) was never repartitioned: its record is
// generation 1 with the raw topic's partition count (stored false).
func (r *Tool) readControl(ctx context.Context) (g *imv1.Generations, stored bool, err error) {
	topic := r.cfg.ControlTopic
	end, err := kafkawire.NewestOffset(ctx, r.client, topic, 0)
	switch {
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		end = 0
	case err != nil:
		return nil, false, fmt.Errorf("end of %s: %w", topic, err)
	}
	var last []byte
	if end > 0 {
		consumer, err := sarama.NewConsumerFromClient(r.client)
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
	if len(last) > 0 {
		g, err := generation.Decode(last)
		if err != nil {
			return nil, false, fmt.Errorf("the control record of %s: %w", topic, err)
		}
		return g, true, nil
	}
	n, err := kafkawire.PartitionCount(r.admin, generation.Topics(r.cfg.Topics, generation.First).Raw)
	if err != nil {
		return nil, false, err
	}
	return generation.Initial(n), false, nil
}

// publish writes the control record and waits for the broker's
// acknowledgement.
func (r *Tool) publish(g *imv1.Generations) error {
	b, err := generation.Encode(g)
	if err != nil {
		return err
	}
	cfg := r.cfg.Kafka.IdempotentProducerConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(r.cfg.Kafka.BrokerList(), cfg)
	if err != nil {
		return fmt.Errorf("control producer: %w", err)
	}
	defer prod.Close()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: r.cfg.ControlTopic, Partition: 0,
		Key: sarama.StringEncoder(generation.ControlKey), Value: sarama.ByteEncoder(b)}); err != nil {
		return fmt.Errorf("write the control record: %w", err)
	}
	return nil
}
