package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Progress tells "history holds nothing of this conversation because it
// has none" from "because the sink has not written it yet": a group that
// history does not know is unknown only once the sinks have stored
// everything the sequenced topics committed on its partitions so far, in
// every live generation (a group created in a new generation is there
// only). It reads the sinks' committed offsets, so it holds whichever
// history instance owns a partition. Safe for concurrent use.
type Progress struct {
	kafka  kafkawire.Config
	topics kafkawire.Topics // generation 1's
	group  string           // generation 1's
	live   func() []*imv1.Generation

	mu         sync.Mutex
	client     sarama.Client // connected on first use
	admin      sarama.ClusterAdmin
	partitions map[string]int // per sequenced topic

	storedMu sync.Mutex // one Stored read at a time; the others reuse it
	stored   []TopicStored
	storedAt time.Time
}

// TopicStored is a generation's sequenced topic and, per partition, the
// offset before which its sink has stored every record.
type TopicStored struct {
	Generation   uint32
	Topic        string
	StoredBefore []int64
}

// NewProgress reads the progress of the sinks' consumer groups over the
// sequenced topics of the live generations; topics and group are
// generation 1's names, and live lists the live generations (the control
// topic's view: empty while it is not read yet, and then Progress answers
// errors). A nil live means generation 1 only. It connects on first use,
// so that the service starts while the broker is away.
func NewProgress(k kafkawire.Config, topics kafkawire.Topics, group string, live func() []*imv1.Generation) *Progress {
	if live == nil {
		live = func() []*imv1.Generation { return []*imv1.Generation{{Id: generation.First}} }
	}
	return &Progress{kafka: k, topics: topics.WithDefaults(), group: group, live: live, partitions: map[string]int{}}
}

// ErrNoGenerations: the control topic has not been read yet.
var ErrNoGenerations = errors.New("history progress: the live generations are not known yet")

// generations are the live generations' sequenced topics and sink groups.
func (p *Progress) generations() ([]TopicStored, []string, error) {
	live := p.live()
	if len(live) == 0 {
		return nil, nil, ErrNoGenerations
	}
	out := make([]TopicStored, len(live))
	groups := make([]string, len(live))
	for i, gen := range live {
		out[i] = TopicStored{Generation: gen.Id, Topic: generation.Topics(p.topics, gen.Id).Sequenced}
		groups[i] = generation.GroupID(p.group, gen.Id)
	}
	return out, groups, nil
}

// CaughtUp reports whether, in every live generation, the sink has
// committed on the partition of conversation everything the sequenced
// topic had committed when it was called: then a row history does not
// hold was not written before the call.
func (p *Progress) CaughtUp(ctx context.Context, conversation string) (bool, error) {
	gens, groups, err := p.generations()
	if err != nil {
		return false, err
	}
	for i, g := range gens {
		n, err := p.connect(g.Topic)
		if err != nil {
			return false, err
		}
		part := int32(kafkawire.PartitionFor([]byte(conversation), n))
		stored, stable, err := p.offsets(ctx, g.Topic, groups[i], []int32{part})
		if err != nil {
			return false, err
		}
		if stored[0] < stable[0] {
			return false, nil
		}
	}
	return true, nil
}

// storedTTL is how long an answer of Stored is reused: gateways poll it
// while devices connect.
const storedTTL = 200 * time.Millisecond

// Stored is, per live generation's sequenced topic and partition, the
// offset before which its sink has stored every record. A gateway that the
// fanout told "from offset o on, partition p of topic t is routed to this
// device" has everything before o in history once the answer for (t, p)
// is >= o. Concurrent callers share one read.
func (p *Progress) Stored(ctx context.Context) ([]TopicStored, error) {
	gens, groups, err := p.generations()
	if err != nil {
		return nil, err
	}
	p.storedMu.Lock()
	defer p.storedMu.Unlock()
	if time.Since(p.storedAt) < storedTTL && sameTopics(p.stored, gens) {
		return cloneStored(p.stored), nil
	}
	for i := range gens {
		n, err := p.connect(gens[i].Topic)
		if err != nil {
			return nil, err
		}
		parts := make([]int32, n)
		for j := range parts {
			parts[j] = int32(j)
		}
		if gens[i].StoredBefore, _, err = p.offsets(ctx, gens[i].Topic, groups[i], parts); err != nil {
			return nil, err
		}
	}
	p.stored, p.storedAt = gens, time.Now()
	return cloneStored(gens), nil
}

func sameTopics(a, b []TopicStored) bool {
	return slices.EqualFunc(a, b, func(x, y TopicStored) bool { return x.Topic == y.Topic })
}

func cloneStored(s []TopicStored) []TopicStored {
	out := slices.Clone(s)
	for i := range out {
		out[i].StoredBefore = slices.Clone(out[i].StoredBefore)
	}
	return out
}

// offsets reads, for each of parts, topic's stable end and group's
// committed offset; stored is how far the group has stored (storedUpTo).
func (p *Progress) offsets(ctx context.Context, topic, group string, parts []int32) (stored, stable []int64, err error) {
	// The ends first: the sink's positions read after them can only be later.
	stable = make([]int64, len(parts))
	for i, part := range parts {
		if stable[i], err = kafkawire.StableOffset(ctx, p.client, topic, part); err != nil {
			return nil, nil, fmt.Errorf("history progress: %w", err)
		}
	}
	resp, err := p.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return nil, nil, fmt.Errorf("history progress: offsets of %s: %w", group, err)
	}
	stored = make([]int64, len(parts))
	for i, part := range parts {
		block := resp.GetBlock(topic, part)
		if block == nil || block.Err != sarama.ErrNoError {
			return nil, nil, fmt.Errorf("history progress: offsets of %s on %s/%d: %v", group, topic, part, block)
		}
		if stored[i], err = p.storedUpTo(ctx, topic, part, block.Offset, stable[i]); err != nil {
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
func (p *Progress) storedUpTo(ctx context.Context, topic string, part int32, committed, stable int64) (int64, error) {
	// The record before the stable offset is a transaction's marker (the
	// sequenced topic is written only in transactions): no need to read it.
	if committed >= stable-1 {
		return stable, nil
	}
	from := committed
	if from < 0 { // nothing committed: the sink starts at the oldest record
		var err error
		if from, err = p.client.GetOffset(topic, part, sarama.OffsetOldest); err != nil {
			return 0, fmt.Errorf("history progress: start of %s/%d: %w", topic, part, err)
		}
	}
	data, err := kafkawire.CommittedRecordIn(ctx, p.client, topic, part, from, stable)
	switch {
	case err != nil:
		return 0, fmt.Errorf("history progress: %w", err)
	case data:
		return committed, nil
	}
	return stable, nil
}

// connect makes the clients, once, and reads topic's partition count,
// once per topic; it returns the count.
func (p *Progress) connect(topic string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.partitions[topic]; n > 0 {
		return n, nil
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
	ps, err := p.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("history progress: partitions of %s: %w", topic, err)
	}
	p.partitions[topic] = len(ps)
	return len(ps), nil
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
