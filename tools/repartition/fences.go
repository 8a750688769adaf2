package repartition

import (
	"fmt"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// WriteFences writes a fence to each of the partitions of raw: its
// sequencer worker hands the partition over to generation to there. A
// fence written twice is dropped by the worker. It returns the fences'
// offsets.
func WriteFences(k kafkawire.Config, raw string, partitions []int32, to *imv1.Generation) ([]int64, error) {
	b, err := imv1.Marshal(&imv1.GenerationFence{Version: imv1.Version, Generation: to.Id, Partitions: to.Partitions})
	if err != nil {
		return nil, err
	}
	cfg := k.IdempotentProducerConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner // a fence goes to the partition it fences
	prod, err := sarama.NewSyncProducer(k.BrokerList(), cfg)
	if err != nil {
		return nil, fmt.Errorf("fence producer: %w", err)
	}
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, len(partitions))
	for i, p := range partitions {
		msgs[i] = &sarama.ProducerMessage{Topic: raw, Partition: p, Key: sarama.StringEncoder(generation.FenceKey), Value: sarama.ByteEncoder(b)}
	}
	if err := prod.SendMessages(msgs); err != nil {
		return nil, fmt.Errorf("write fences to %s: %w", raw, err)
	}
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		offsets[i] = m.Offset
	}
	return offsets, nil
}
