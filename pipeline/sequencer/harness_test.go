package sequencer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/pipeline/stacktest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// endKey marks the end of a partition's log in tests: written after every
// sequencer has stopped, so a reader that reaches it has read everything.
const endKey = "\x00end"

// newTopics creates a fresh set of pipeline topics, deleted at cleanup.
func newTopics(t *testing.T, partitions int32) kafkawire.Topics {
	t.Helper()
	admin := stacktest.Admin(t)
	prefix := stacktest.Name(t, "seq")
	topics := kafkawire.PrefixedTopics(prefix)
	specs := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range specs {
			admin.DeleteTopic(s.Name)
		}
	})
	return topics
}

// startSequencer runs a sequencer in this process until the returned stop
// is called (or the test ends).
func startSequencer(t *testing.T, topics kafkawire.Topics, tune func(*sequencer.Config)) (stop func()) {
	t.Helper()
	cfg := sequencer.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: topics.Raw + ".sequencer"}
	if tune != nil {
		tune(&cfg)
	}
	s, err := sequencer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("sequencer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func encodeRaw(t testing.TB, r *imv1.RawRecord) kafka.Message {
	t.Helper()
	b, err := imv1.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(r.ConversationId), Value: b}
}

// rawProducer writes raw records the way ingest does.
func rawProducer(t *testing.T, topics kafkawire.Topics) *kafkawire.Producer {
	t.Helper()
	p := stacktest.Kafka(t).NewProducer(topics.Raw)
	t.Cleanup(func() { p.Close() })
	return p
}

// seqLog reads every partition of the sequenced topic (read_committed) and
// checks I1–I4 as it goes.
type seqLog struct {
	mu         sync.Mutex
	check      *sequencer.Checker
	outcomes   map[string][]*imv1.SequencedRecord // sender/client_msg_id -> records
	ended      map[int32]bool
	partitions int32
	changed    chan struct{}
	errs       []error
}

func readLog(t *testing.T, topics kafkawire.Topics, partitions int32) *seqLog {
	t.Helper()
	cfg := stacktest.Kafka(t)
	consumer, err := sarama.NewConsumer(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := &seqLog{check: sequencer.NewChecker(), outcomes: map[string][]*imv1.SequencedRecord{},
		ended: map[int32]bool{}, partitions: partitions, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); consumer.Close() })
	for p := int32(0); p < partitions; p++ {
		pc, err := kafkawire.ConsumePartition(context.Background(), consumer, topics.Sequenced, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-pc.Messages():
					l.add(p, m)
				}
			}
		}()
	}
	return l
}

func (l *seqLog) add(p int32, m *sarama.ConsumerMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}()
	if string(m.Key) == endKey {
		l.ended[p] = true
		return
	}
	r := &imv1.SequencedRecord{}
	if err := imv1.Unmarshal(m.Value, r); err != nil {
		l.errs = append(l.errs, fmt.Errorf("partition %d offset %d: %w", p, m.Offset, err))
		return
	}
	if want := kafkawire.PartitionFor(m.Key, int(l.partitions)); want != int(p) {
		l.errs = append(l.errs, fmt.Errorf("%s on partition %d, its raw records are on %d", m.Key, p, want))
	}
	l.check.Add(r)
	k := r.SenderUserId + "/" + r.ClientMsgId
	l.outcomes[k] = append(l.outcomes[k], r)
}

// waitFor blocks until cond holds over the log read so far, or fails the
// test after timeout.
func (l *seqLog) waitFor(t *testing.T, timeout time.Duration, what string, cond func(l *seqLog) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		ok := cond(l)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.changed:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s (%d entries read)", timeout, what, l.check.Entries())
		}
	}
}

// finish writes an end marker to every partition of the sequenced topic (all
// sequencers must have stopped) and reads up to them: the log is then
// complete, and its checks final.
func (l *seqLog) finish(t *testing.T, topics kafkawire.Topics, partitions int32) {
	t.Helper()
	cfg := stacktest.Kafka(t)
	prod, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "end")))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topics.Sequenced, Partition: p,
			Key: sarama.StringEncoder(endKey), Value: sarama.StringEncoder("end")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, time.Minute, "the end markers", func(l *seqLog) bool { return len(l.ended) == int(partitions) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := errors.Join(l.errs...); err != nil {
		t.Fatal(err)
	}
	if err := l.check.Err(); err != nil {
		t.Fatal(err)
	}
}

// entries is the number of sequenced entries read so far.
func (l *seqLog) entries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.check.Entries()
}

// resolved is true when every key has at least one outcome in the log.
func (l *seqLog) resolved(keys []string) bool {
	for _, k := range keys {
		if len(l.outcomes[k]) == 0 {
			return false
		}
	}
	return true
}

// entryOf is the sequenced entry (seq > 0) of a send, and how many there are.
func (l *seqLog) entryOf(key string) (*imv1.SequencedRecord, int) {
	var e *imv1.SequencedRecord
	n := 0
	for _, r := range l.outcomes[key] {
		if r.Seq > 0 {
			e = r
			n++
		}
	}
	return e, n
}

type kafkaMessage = kafka.Message

// mustMarshalAnyVersion encodes r whatever its version (imv1.Marshal refuses
// unknown ones), to forge a record from a future writer.
func mustMarshalAnyVersion(t *testing.T, r *imv1.RawRecord) []byte {
	t.Helper()
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsErr(reason string, err error) bool { return strings.Contains(reason, err.Error()) }
