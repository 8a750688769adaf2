package sequencer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestLoadKeepsInvariants: 100 conversations, concurrent writers, devices
// per member, duplicated and swapped raw records. Over every record of the
// sequenced log: I1–I4 (Checker), every distinct send has exactly one
// outcome entry or is rejected, and nothing was sequenced past a gap, since
// no send was lost.
func TestLoadKeepsInvariants(t *testing.T) {
	const partitions = 4
	topics := newTopics(t, partitions)
	w := newWorkload(1, 70, 30, 40)
	log := readLog(t, topics, partitions)
	stop := startSequencer(t, topics, nil)
	start := time.Now()
	w.send(t, func() string { return topics.Raw }, 4, 100, 0)
	log.waitFor(t, 3*time.Minute, "an outcome for every send", func(l *seqLog) bool { return l.resolved(w.keys) })
	took := time.Since(start)
	stop()
	log.finish(t, topics, partitions)

	log.mu.Lock()
	defer log.mu.Unlock()
	sequenced, rejected := 0, 0
	for _, k := range w.keys {
		entry, n := log.entryOf(k)
		switch {
		case n > 1:
			t.Errorf("%s has %d entries", k, n)
		case n == 1:
			sequenced++
			if entry.PredecessorMissing {
				t.Errorf("%s sequenced past a gap, though no send was lost", k)
			}
		default:
			rejected++
			if rj := log.outcomes[k][0].GetRejection(); rj == nil || rj.Code != sequencer.CodeNotMember {
				t.Errorf("%s: no entry and outcome %v; only sends of non-members may be rejected", k, log.outcomes[k][0])
			}
		}
	}
	if sequenced < len(w.keys)*9/10 {
		t.Errorf("only %d of %d sends sequenced", sequenced, len(w.keys))
	}
	t.Logf("%d raw records (%d distinct sends): %d sequenced, %d rejected, in %v", w.sends, len(w.keys), sequenced, rejected, took.Round(time.Millisecond))
}

// TestPoisonRecordsGoToDeadLetter: undecodable records, unknown versions and
// records keyed off their conversation are dead-lettered with the reason,
// and the partition goes on: the good records around them are sequenced.
func TestPoisonRecordsGoToDeadLetter(t *testing.T) {
	topics := newTopics(t, 1)
	log := readLog(t, topics, 1)
	startSequencer(t, topics, nil)

	good := func(cmid string) *imv1.RawRecord {
		return &imv1.RawRecord{Version: imv1.Version, ConversationId: "dm:a:b", ClientMsgId: cmid, SenderUserId: "a",
			SenderDeviceId: "p", Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "t", Body: []byte("x")}}}
	}
	future := good("future")
	future.Version = imv1.Version + 1
	futureBytes := mustMarshalAnyVersion(t, future)
	wrongKey := encodeRaw(t, good("wrong-key"))
	wrongKey.Key = []byte("dm:a:c")
	noBody := good("no-body")
	noBody.Body = nil
	msgs := append([]kafkaMessage{encodeRaw(t, good("before"))},
		kafkaMessage{Key: []byte("dm:a:b"), Value: []byte{0xff, 0x01, 0x02}},
		kafkaMessage{Key: []byte("dm:a:b"), Value: futureBytes},
		wrongKey,
		encodeRaw(t, noBody),
		encodeRaw(t, good("after")),
	)
	if err := rawProducer(t, topics.Raw).Write(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, time.Minute, "the good records", func(l *seqLog) bool { return l.resolved([]string{"a/before", "a/after"}) })
	log.mu.Lock()
	after, _ := log.entryOf("a/after")
	log.mu.Unlock()
	if after == nil || after.Seq != 2 {
		t.Fatalf("the record after the poison got %v, want seq 2", after)
	}

	letters := stacktest.DeadLetters(t, topics.DeadLetter, 4)
	reasons := map[int64]string{}
	for _, d := range letters {
		if d.Stage != "sequencer" || d.SourceTopic != topics.Raw || d.Reason == "" {
			t.Errorf("dead letter lacks its origin or reason: %v", d)
		}
		reasons[d.SourceOffset] = d.Reason
	}
	for off, want := range map[int64]error{1: imv1.ErrMalformed, 2: imv1.ErrUnknownVersion} {
		if r := reasons[off]; r == "" || !containsErr(r, want) {
			t.Errorf("offset %d: reason %q, want one naming %v", off, r, want)
		}
	}
}

// TestRefusesMismatchedPartitions: the sequencer must not start when the
// raw and sequenced topics differ in partition count.
func TestRefusesMismatchedPartitions(t *testing.T) {
	topics := newTopics(t, 2)
	topics.Sequenced = stacktest.Topic(t, 3, nil)
	s, err := sequencer.New(sequencer.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: topics.Raw + ".g"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx); !errors.Is(err, kafkawire.ErrPartitionMismatch) {
		t.Fatalf("Run = %v, want ErrPartitionMismatch", err)
	}
}

// TestWaitsForItsTopics: a sequencer started before its topics exist (a
// broker restarting, `imctl init` still creating them) does not exit: it
// says why on Ready, and sequences once they are there.
func TestWaitsForItsTopics(t *testing.T) {
	prefix := stacktest.Name(t, "seq")
	topics := kafkawire.PrefixedTopics(prefix)
	s, err := sequencer.New(sequencer.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: prefix + ".g", Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stacktest.Eventually(t, time.Minute, "Ready saying it waits for the topics", func() bool {
		err := s.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "waiting for the topics") && strings.Contains(err.Error(), topics.Raw)
	})
	select {
	case err := <-done:
		t.Fatalf("the sequencer exited while its topics were missing: %v", err)
	default:
	}
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: 2})...)
	stacktest.Eventually(t, time.Minute, "sequencer ready", func() bool { return s.Ready(ctx) == nil })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sequencer: %v", err)
	}
}
