package sequencer_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// endKey marks the end of a partition's log in tests: written after every
// sequencer has stopped, so a reader that reaches it has read everything.
const endKey = "\x00end"

// newTopics creates a fresh set of pipeline topics, deleted at cleanup.
func newTopics(t testing.TB, partitions int32) kafkawire.Topics {
	t.Helper()
	topics := kafkawire.PrefixedTopics(stacktest.Name(t, "seq"))
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})...)
	return topics
}

// startSequencer runs a sequencer in this process until the returned stop
// is called (or the test ends).
func startSequencer(t testing.TB, topics kafkawire.Topics, tune func(*sequencer.Config)) (stop func()) {
	t.Helper()
	cfg := sequencer.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: topics.Raw + ".sequencer"}
	if tune != nil {
		tune(&cfg)
	}
	s, err := sequencer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return stacktest.Run(t, "sequencer", s.Run)
}

func encodeRaw(t testing.TB, r *imv1.RawRecord) kafka.Message {
	t.Helper()
	b, err := imv1.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(r.ConversationId), Value: b}
}

// rawProducer writes raw records to a raw topic the way ingest does.
func rawProducer(t testing.TB, topic string) *kafkawire.Producer {
	t.Helper()
	p := stacktest.Kafka(t).NewProducer(topic)
	t.Cleanup(func() { p.Close() })
	return p
}

// seqLog reads every partition of the sequenced topic (read_committed) and
// checks I1–I4 as it goes; it also reads the heads topic's heartbeats.
type seqLog struct {
	mu         sync.Mutex
	check      *sequencer.Checker
	outcomes   map[string][]*imv1.SequencedRecord // sender/client_msg_id -> records
	last       map[string]uint64                  // conversation -> last seq in the log
	heads      map[string]uint64                  // conversation -> highest seq a heartbeat named
	ended      map[int32]bool
	headsEnded map[int32]bool
	partitions int32
	changed    chan struct{}
	errs       []error
}

func readLog(t *testing.T, topics kafkawire.Topics, partitions int32) *seqLog {
	t.Helper()
	l := &seqLog{check: sequencer.NewChecker(), outcomes: map[string][]*imv1.SequencedRecord{},
		last: map[string]uint64{}, heads: map[string]uint64{}, ended: map[int32]bool{}, headsEnded: map[int32]bool{},
		partitions: partitions, changed: make(chan struct{}, 1)}
	stacktest.Follow(t, topics.Sequenced, partitions, func(m *sarama.ConsumerMessage) { l.add(m.Partition, m) })
	stacktest.Follow(t, topics.Heads, partitions, func(m *sarama.ConsumerMessage) { l.addHeads(m.Partition, m) })
	return l
}

// addHeads takes a heartbeat of the heads topic.
func (l *seqLog) addHeads(p int32, m *sarama.ConsumerMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.notify()
	if string(m.Key) == endKey {
		l.headsEnded[p] = true
		return
	}
	sh := &imv1.StreamHeads{}
	if err := imv1.Unmarshal(m.Value, sh); err != nil {
		l.errs = append(l.errs, fmt.Errorf("heads partition %d offset %d: %w", p, m.Offset, err))
		return
	}
	if sh.Partition != p {
		l.errs = append(l.errs, fmt.Errorf("heads of partition %d on heads partition %d", sh.Partition, p))
	}
	for _, h := range sh.Heads {
		l.heads[h.ConversationId] = max(l.heads[h.ConversationId], h.Seq)
	}
}

// headsCaughtUp: the heartbeats named every conversation's last seq.
func (l *seqLog) headsCaughtUp() bool {
	for conv, seq := range l.last {
		if l.heads[conv] != seq {
			return false
		}
	}
	return true
}

func (l *seqLog) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *seqLog) add(p int32, m *sarama.ConsumerMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.notify()
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
	if r.Seq > 0 {
		l.last[r.ConversationId] = max(l.last[r.ConversationId], r.Seq)
	}
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

// finish writes an end marker to every partition of the sequenced and heads
// topics (all sequencers must have stopped) and reads up to them: the log
// is then complete, and its checks final. No heartbeat may name a seq the
// log does not have (one from an aborted transaction, say).
func (l *seqLog) finish(t *testing.T, topics kafkawire.Topics, partitions int32) {
	t.Helper()
	writeEnds(t, map[string]int32{topics.Sequenced: partitions, topics.Heads: partitions})
	l.waitFor(t, time.Minute, "the end markers", func(l *seqLog) bool {
		return len(l.ended) == int(partitions) && len(l.headsEnded) == int(partitions)
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	for conv, seq := range l.heads {
		if seq > l.last[conv] {
			l.errs = append(l.errs, fmt.Errorf("a heartbeat named seq %d of %s; the log ends at %d", seq, conv, l.last[conv]))
		}
	}
	if err := errors.Join(l.errs...); err != nil {
		t.Fatal(err)
	}
	if err := l.check.Err(); err != nil {
		t.Fatal(err)
	}
}

// writeEnds writes an end marker (endKey) to every partition of each
// topic, with its partition count, in one transaction.
func writeEnds(t *testing.T, topics map[string]int32) {
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
	for topic, partitions := range topics {
		for p := int32(0); p < partitions; p++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p,
				Key: sarama.StringEncoder(endKey), Value: sarama.StringEncoder("end")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := prod.CommitTxn(); err != nil {
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

// verifyExactlyOnce: every distinct send has one entry or (non-members
// only) a rejection; no entry was sequenced past a gap, since none was lost.
func verifyExactlyOnce(t *testing.T, l *seqLog, w *workload) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	sequenced := 0
	for _, k := range w.keys {
		entry, n := l.entryOf(k)
		switch {
		case n > 1:
			t.Errorf("%s sequenced %d times", k, n)
		case n == 1:
			sequenced++
			if entry.PredecessorMissing {
				t.Errorf("%s sequenced past a gap, though no send was lost", k)
			}
		case l.outcomes[k][0].GetRejection().GetCode() != "not_member":
			t.Errorf("%s: no entry, outcome %v", k, l.outcomes[k][0])
		}
	}
	t.Logf("%d raw records, %d distinct sends, %d sequenced, %d entries in the log", w.sends, len(w.keys), sequenced, l.check.Entries())
}
