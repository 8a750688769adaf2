package chaos

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/IBM/sarama"

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

// CheckSequencedLog reads every partition of topic from offset from[p]
// (its start where from has none) until
// each conversation of want showed its seq want[conv], and checks every
// record of those conversations. The log is append-only: a fenced
// instance's late commit would sit before the records written after it,
// so the load must go on after the fault for this to see it (it does in
// the chaos runs and the tests).
func CheckSequencedLog(ctx context.Context, kcfg kafkawire.Config, topic string, from map[int32]int64, want map[string]uint64) (LogCheck, error) {
	consumer, err := sarama.NewConsumer(kcfg.BrokerList(), kcfg.ConsumerGroupConfig())
	if err != nil {
		return LogCheck{}, fmt.Errorf("chaos: sequenced log: %w", err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		return LogCheck{}, fmt.Errorf("chaos: sequenced log: partitions of %s: %w", topic, err)
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
	var (
		mu    sync.Mutex
		check LogCheck
		errs  []string
		wg    sync.WaitGroup
	)
	for p, convs := range byPartition {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start, ok := from[p]
			if !ok {
				start = sarama.OffsetOldest
			}
			entries, violations, err := checkPartition(ctx, consumer, topic, p, start, convs)
			mu.Lock()
			defer mu.Unlock()
			check.Entries += entries
			check.Violations = append(check.Violations, violations...)
			if err != nil {
				errs = append(errs, err.Error())
			}
		}()
	}
	wg.Wait()
	sort.Strings(check.Violations)
	if len(errs) > 0 {
		return check, fmt.Errorf("chaos: sequenced log: %s", strings.Join(errs, "; "))
	}
	return check, nil
}

func checkPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, start int64, want map[string]uint64) (int, []string, error) {
	pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, start)
	if err != nil {
		return 0, nil, fmt.Errorf("partition %d: %w", p, err)
	}
	defer pc.Close()
	chk := sequencer.NewChecker()
	pending := maps.Clone(want)
	for len(pending) > 0 {
		var m *sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return chk.Entries(), nil, fmt.Errorf("partition %d: %d conversations not read to their last accepted seq: %w", p, len(pending), ctx.Err())
		case m = <-pc.Messages():
		}
		conv := string(m.Key)
		seq, ours := want[conv]
		if !ours {
			continue
		}
		r := &imv1.SequencedRecord{}
		if err := imv1.Unmarshal(m.Value, r); err != nil {
			return chk.Entries(), nil, fmt.Errorf("partition %d offset %d: %w", p, m.Offset, err)
		}
		chk.Add(r)
		if r.Seq == seq {
			delete(pending, conv)
		}
	}
	var violations []string
	if err := chk.Err(); err != nil {
		violations = append(violations, fmt.Sprintf("partition %d: %v", p, err))
	}
	return chk.Entries(), violations, nil
}
