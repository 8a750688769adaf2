package history

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
)

// Progress tells "history holds nothing of this conversation because it
// has none" from "because the sink has not written it yet": a group that
// history does not know is unknown only once the sink has stored
// everything the sequenced topic committed on its partition so far.
// It reads the sink's committed offsets, so it holds whichever history
// instance owns the partition. Safe for concurrent use.
type Progress struct {
	kafka kafkawire.Config
	topic string
	group string

	mu         sync.Mutex
	client     sarama.Client // connected on first use
	admin      sarama.ClusterAdmin
	partitions int // of the topic
	stored     []int64
	storedAt   time.Time
}

// NewProgress reads the progress of the sink's consumer group over the
// sequenced topic. It connects on first use, so that the service starts
// while the broker is away.
func NewProgress(k kafkawire.Config, topics kafkawire.Topics, group string) *Progress {
	return &Progress{kafka: k, topic: topics.WithDefaults().Sequenced, group: group}
}

// CaughtUp reports whether the sink has committed, on the partition of
// conversation, everything the sequenced topic had committed when it was
// called: then a row it does not hold was not written before the call.
func (p *Progress) CaughtUp(ctx context.Context, conversation string) (bool, error) {
	n, err := p.connect()
	if err != nil {
		return false, err
	}
	part := int32(kafkawire.PartitionFor([]byte(conversation), n))
	stored, stable, err := p.partition(ctx, part)
	if err != nil {
		return false, err
	}
	return stored >= stable, nil
}

// storedTTL is how long an answer of Stored is reused: gateways poll it
// while devices connect.
const storedTTL = 200 * time.Millisecond

// Stored is, per partition of the sequenced topic, the offset before which
// the sink has stored every record. A gateway that the fanout told "from
// offset o on, partition p is routed to this device" has everything before
// o in history once Stored()[p] >= o.
func (p *Progress) Stored(ctx context.Context) ([]int64, error) {
	n, err := p.connect()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if time.Since(p.storedAt) < storedTTL {
		out := slices.Clone(p.stored)
		p.mu.Unlock()
		return out, nil
	}
	p.mu.Unlock()
	out := make([]int64, n)
	for part := range out {
		if out[part], _, err = p.partition(ctx, int32(part)); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	p.stored, p.storedAt = slices.Clone(out), time.Now()
	p.mu.Unlock()
	return out, nil
}

// partition reads the sink's committed offset on part and the topic's
// stable end there; stored is the committed offset, or the end when only
// a transaction marker lies between them.
func (p *Progress) partition(ctx context.Context, part int32) (stored, stable int64, err error) {
	// The end first: the sink's position read after it can only be later.
	stable, err = kafkawire.StableOffset(ctx, p.client, p.topic, part)
	if err != nil {
		return 0, 0, fmt.Errorf("history progress: %w", err)
	}
	resp, err := p.admin.ListConsumerGroupOffsets(p.group, map[string][]int32{p.topic: {part}})
	if err != nil {
		return 0, 0, fmt.Errorf("history progress: offsets of %s: %w", p.group, err)
	}
	block := resp.GetBlock(p.topic, part)
	if block == nil || block.Err != sarama.ErrNoError {
		return 0, 0, fmt.Errorf("history progress: offsets of %s on %s/%d: %v", p.group, p.topic, part, block)
	}
	// The record before the stable offset is a transaction's marker, which
	// a consumer never receives (the sequenced topic is written only in
	// transactions): a sink past every data record has committed up to it.
	stored = block.Offset
	if stored >= stable-1 {
		stored = stable
	}
	return stored, stable, nil
}

// connect makes the clients and reads the topic's partition count, once;
// it returns the count.
func (p *Progress) connect() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partitions > 0 {
		return p.partitions, nil
	}
	if p.client == nil {
		client, err := sarama.NewClient(p.kafka.BrokerList(), p.kafka.Sarama())
		if err != nil {
			return 0, fmt.Errorf("history progress: %w", err)
		}
		admin, err := sarama.NewClusterAdminFromClient(client)
		if err != nil {
			client.Close()
			return 0, fmt.Errorf("history progress: %w", err)
		}
		p.client, p.admin = client, admin
	}
	ps, err := p.client.Partitions(p.topic)
	if err != nil {
		return 0, fmt.Errorf("history progress: partitions of %s: %w", p.topic, err)
	}
	p.partitions = len(ps)
	return p.partitions, nil
}

// Close disconnects.
func (p *Progress) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == nil {
		return nil
	}
	return p.admin.Close() // and the client under it
}
