package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// LogCheck is what the sequenced topic itself holds of a run's
// conversations, read as a read-committed consumer (the fanout, the
// history sink) reads it. Nothing a fenced sequencer wrote after its
// partitions moved may be in it: such a commit would put a seq there a
// second time, or a send at two seqs, which the gateways' reorder buffers
// and ClickHouse's dedup would hide from the other checks.
type LogCheck struct {
	// Entries: records with a seq of the run's conversations.
	Entries int
	// Violations of I1-I4 (sequencer.Checker): a seq that does not follow
	// its predecessor (a gap, or a seq twice), a send at two seqs, ...
	Violations []string
}

// WantedSeqs is, per conversation, the highest seq of the accepted sends:
// the sequenced log is read at least up to it.
func WantedSeqs(accepted []loadgen.Message) map[string]uint64 {
	want := map[string]uint64{}
	for _, m := range accepted {
		want[m.Conv] = max(want[m.Conv], m.Seq)
	}
	return want
}

// LogOffsets are the offsets the next records of topic's partitions will
// get: where a check of the records written from now on starts.
func LogOffsets(ctx context.Context, kcfg kafkawire.Config, topic string) (map[int32]int64, error) {
	client, err := sarama.NewClient(kcfg.BrokerList(), kcfg.ConsumerGroupConfig())
	if err != nil {
		return nil, fmt.Errorf("chaos: sequenced log: %w", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("chaos: sequenced log: partitions of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		if out[p], err = kafkawire.NewestOffset(ctx, client, topic, p); err != nil {
			return nil, fmt.Errorf("chaos: sequenced log: end of %s/%d: %w", topic, p, err)
		}
	}
	return out, nil
}

// LogGeneration is one generation's sequenced topic in a run's log, read
// from From (per partition; its start where From has none).
type LogGeneration struct {
	Topic string
	From  map[int32]int64
}

// CheckSequencedLog reads the sequenced topics of gens one generation
// after the other (a conversation's log is their concatenation: the old
// generation's up to its fence, then the new one's), checking every record
// of want's conversations: each generation but the last up to each
// partition's end record (generation.FenceKey, the last record a fenced
// sequencer commits there), the last until each conversation showed its
// seq want[conv]. The log is append-only: a fenced instance's late commit
// would sit before the records written after it, so the load must go on
// after the fault for this to see it (it does in the chaos runs and the
// tests).
func CheckSequencedLog(ctx context.Context, kcfg kafkawire.Config, gens []LogGeneration, want map[string]uint64) (LogCheck, error) {
	l := NewSequencedLog(kcfg, slices.Collect(maps.Keys(want)))
	for _, gen := range gens[:len(gens)-1] {
		if err := l.Fenced(ctx, gen); err != nil {
			return l.result(), err
		}
	}
	return l.Last(ctx, gens[len(gens)-1], want)
}

// SequencedLog is CheckSequencedLog one generation at a time, so that an
// old generation is read before imctl repartition cleanup deletes it.
type SequencedLog struct {
	kcfg  kafkawire.Config
	convs map[string]uint64 // the run's conversations (values unused)
	chk   *sharedChecker
}

// NewSequencedLog checks the records of convs.
func NewSequencedLog(kcfg kafkawire.Config, convs []string) *SequencedLog {
	l := &SequencedLog{kcfg: kcfg, convs: map[string]uint64{}, chk: &sharedChecker{c: sequencer.NewChecker()}}
	for _, c := range convs {
		l.convs[c] = 0
	}
	return l
}

// Fenced reads a fenced generation up to its partitions' end records.
func (l *SequencedLog) Fenced(ctx context.Context, gen LogGeneration) error {
	return l.read(ctx, gen, l.convs, false)
}

// Last reads the newest generation until each conversation of want showed
// its seq want[conv] (in it or before), and gives the verdict.
func (l *SequencedLog) Last(ctx context.Context, gen LogGeneration, want map[string]uint64) (LogCheck, error) {
	pending := map[string]uint64{}
	for conv, seq := range want { // one that sent nothing after a switch ends earlier
		if l.chk.lastSeq(conv) < seq {
			pending[conv] = seq
		}
	}
	if err := l.read(ctx, gen, pending, true); err != nil {
		return l.result(), err
	}
	return l.result(), nil
}

func (l *SequencedLog) read(ctx context.Context, gen LogGeneration, convs map[string]uint64, last bool) error {
	consumer, err := sarama.NewConsumer(l.kcfg.BrokerList(), l.kcfg.ConsumerGroupConfig())
	if err != nil {
		return fmt.Errorf("chaos: sequenced log: %w", err)
	}
	defer consumer.Close()
	if err := checkGeneration(ctx, consumer, gen, convs, last, l.chk); err != nil {
		return fmt.Errorf("chaos: sequenced log: %w", err)
	}
	return nil
}

func (l *SequencedLog) result() LogCheck {
	l.chk.mu.Lock()
	defer l.chk.mu.Unlock()
	check := LogCheck{Entries: l.chk.c.Entries()}
	if err := l.chk.c.Err(); err != nil {
		check.Violations = append(check.Violations, err.Error())
	}
	return check
}

// sharedChecker is a sequencer.Checker fed by one reader per partition
// (partitions hold disjoint conversations, each read in order).
type sharedChecker struct {
	mu sync.Mutex
	c  *sequencer.Checker
}

func (s *sharedChecker) add(r *imv1.SequencedRecord) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Add(r)
	return s.c.LastSeq(r.ConversationId)
}

func (s *sharedChecker) lastSeq(conv string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.LastSeq(conv)
}

// checkGeneration reads the partitions of gen that hold want's
// conversations: to their end record, or, the last generation, until each
// conversation showed its wanted seq.
func checkGeneration(ctx context.Context, consumer sarama.Consumer, gen LogGeneration, want map[string]uint64, last bool, chk *sharedChecker) error {
	parts, err := consumer.Partitions(gen.Topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", gen.Topic, err)
	}
	// Each conversation is on one partition; its records are checked in order.
	byPartition := map[int32]map[string]uint64{}
	for conv, seq := range want {
		p := int32(kafkawire.PartitionFor([]byte(conv), len(parts)))
		if byPartition[p] == nil {
			byPartition[p] = map[string]uint64{}
		}
		byPartition[p][conv] = seq
	}
	g, ctx := errgroup.WithContext(ctx)
	for p, convs := range byPartition {
		g.Go(func() error {
			start, ok := gen.From[p]
			if !ok {
				start = sarama.OffsetOldest
			}
			return checkPartition(ctx, consumer, gen.Topic, p, start, convs, last, chk)
		})
	}
	return g.Wait()
}

func checkPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, start int64, want map[string]uint64, last bool, chk *sharedChecker) error {
	pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, start)
	if err != nil {
		return fmt.Errorf("%s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	pending := maps.Clone(want)
	for !last || len(pending) > 0 {
		var m *sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			if last {
				return fmt.Errorf("%s/%d: %d conversations not read to their last accepted seq: %w", topic, p, len(pending), ctx.Err())
			}
			return fmt.Errorf("%s/%d: no end record (the generation was not fenced): %w", topic, p, ctx.Err())
		case m = <-pc.Messages():
		}
		conv := string(m.Key)
		if conv == generation.FenceKey && !last {
			return nil
		}
		seq, ours := want[conv]
		if !ours {
			continue
		}
		r := &imv1.SequencedRecord{}
		if err := imv1.Unmarshal(m.Value, r); err != nil {
			return fmt.Errorf("%s/%d offset %d: %w", topic, p, m.Offset, err)
		}
		if chk.add(r) >= seq {
			delete(pending, conv)
		}
	}
	return nil
}
