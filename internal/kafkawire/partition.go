package kafkawire

import (
	"errors"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
)

// ErrNoKey means a record has no key. Every topic of the pipeline is keyed
// (by conversation, user or device); a keyless record would land on an
// arbitrary partition and break per-conversation order.
var ErrNoKey = errors.New("record has no key")

// Murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2),
// the hash of Java's default partitioner.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// PartitionFor is the partition Java's default partitioner gives key among
// numPartitions: toPositive(murmur2(key)) % numPartitions. It is the one
// key-to-partition function of the project.
func PartitionFor(key []byte, numPartitions int) int {
	return int(uint32(Murmur2(key))&0x7fffffff) % numPartitions
}

// Balancer plugs PartitionFor into a kafka-go Writer.
//
// kafka-go's Balance cannot fail, so a keyless message goes to partition
// PartitionFor(nil); use Producer, which refuses keyless messages first.
type Balancer struct{}

// Balance implements kafka.Balancer. partitions is the sorted list of the
// topic's partition ids, so partitions[i] is partition i.
func (Balancer) Balance(msg kafka.Message, partitions ...int) int {
	return partitions[PartitionFor(msg.Key, len(partitions))]
}

// Partitioner plugs PartitionFor into a sarama producer (Producer.Partitioner
// = NewPartitioner).
type Partitioner struct{}

// NewPartitioner is a sarama.PartitionerConstructor.
func NewPartitioner(topic string) sarama.Partitioner { return Partitioner{} }

// Partition implements sarama.Partitioner.
func (Partitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if msg.Key == nil {
		return 0, ErrNoKey
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return 0, err
	}
	return int32(PartitionFor(key, int(numPartitions))), nil
}

// RequiresConsistency implements sarama.Partitioner: a key always maps to the
// same partition, even while that partition is unavailable.
func (Partitioner) RequiresConsistency() bool { return true }
