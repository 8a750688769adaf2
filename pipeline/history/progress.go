package history

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
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

	storedMu sync.Mutex // one Stored read at a time; the others reuse it
	stored   []int64
	storedAt time.Time
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
	stored, stable, err := p.offsets(ctx, []int32{part})
	if err != nil {
		return false, err
	}
	return stored[0] >= stable[0], nil
}

// storedTTL is how long an answer of Stored is reused: gateways poll it
// while devices connect.
const storedTTL = 200 * time.Millisecond

// Stored is, per partition of the sequenced topic, the offset before which
// the sink has stored every record. A gateway that the fanout told "from
// offset o on, partition p is routed to this device" has everything before
// o in history once Stored()[p] >= o. Concurrent callers share one read.
func (p *Progress) Stored(ctx context.Context) ([]int64, error) {
	n, err := p.connect()
	if err != nil {
		return nil, err
	}
	p.storedMu.Lock()
	defer p.storedMu.Unlock()
	if time.Since(p.storedAt) < storedTTL {
		return slices.Clone(p.stored), nil
	}
	parts := make([]int32, n)
	for i := range parts {
		parts[i] = int32(i)
	}
	stored, _, err := p.offsets(ctx, parts)
	if err != nil {
		return nil, err
	}
	p.stored, p.storedAt = stored, time.Now()
	return slices.Clone(stored), nil
}

// offsets reads, for each of parts, the topic's stable end and the sink's
// committed offset; stored is the committed offset, or the end when only a
// transaction marker lies between them.
func (p *Progress) offsets(ctx context.Context, parts []int32) (stored, stable []int64, err error) {
	// The ends first: the sink's positions read after them can only be later.
	stable = make([]int64, len(parts))
	for i, part := range parts {
		if stable[i], err = kafkawire.StableOffset(ctx, p.client, p.topic, part); err != nil {
			return nil, nil, fmt.Errorf("history progress: %w", err)
		}
	}
	resp, err := p.admin.ListConsumerGroupOffsets(p.group, map[string][]int32{p.topic: parts})
	if err != nil {
		return nil, nil, fmt.Errorf("history progress: offsets of %s: %w", p.group, err)
	}
	stored = make([]int64, len(parts))
	for i, part := range parts {
		block := resp.GetBlock(p.topic, part)
		if block == nil || block.Err != sarama.ErrNoError {
			return nil, nil, fmt.Errorf("history progress: offsets of %s on %s/%d: %v", p.group, p.topic, part, block)
		}
		if stored[i], err = p.storedUpTo(ctx, part, block.Offset, stable[i]); err != nil {
			return nil, nil, err
		}
	}
	return stored, stable, nil
}

// storedUpTo is the offset before which the sink stored everything of
// part, given its committed offset and the stable end: the end when what
// lies between holds nothing a read_committed consumer receives
// (transaction markers, aborted transactions: a sink never commits past
// those), else the committed offset.
func (p *Progress) storedUpTo(ctx context.Context, part int32, committed, stable int64) (int64, error) {
	// The record before the stable offset is a transaction's marker (the
	// sequenced topic is written only in transactions): no need to read it.
	if committed >= stable-1 {
		return stable, nil
	}
	from := committed
	if from < 0 { // nothing committed: the sink starts at the oldest record
		var err error
		if from, err = p.client.GetOffset(p.topic, part, sarama.OffsetOldest); err != nil {
			return 0, fmt.Errorf("history progress: start of %s/%d: %w", p.topic, part, err)
		}
	}
	data, err := kafkawire.CommittedRecordIn(ctx, p.client, p.topic, part, from, stable)
	switch {
	case err != nil:
		return 0, fmt.Errorf("history progress: %w", err)
	case data:
		return committed, nil
	}
	return stable, nil
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
