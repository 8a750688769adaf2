package stacktest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Follow reads partitions 0..partitions-1 of topic from the oldest record
// as the services do (read_committed: aborted transactions and markers
// never show) and hands each record to add, until the test ends. Each
// partition has a goroutine of its own: add sees one partition's records
// in offset order and must be safe for concurrent use.
func Follow(t testing.TB, topic string, partitions int32, add func(*sarama.ConsumerMessage)) {
	t.Helper()
	parts := make([]int32, partitions)
	for p := range parts {
		parts[p] = int32(p)
	}
	t.Cleanup(consume(t, topic, parts, func(_ context.Context, m *sarama.ConsumerMessage) { add(m) }))
}

// ReadCommitted reads n records of topic (every partition, from the oldest,
// read_committed) in the order they arrive, failing the test if fewer
// arrive within timeout.
func ReadCommitted(t testing.TB, topic string, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	in := make(chan *sarama.ConsumerMessage)
	stop := consume(t, topic, nil, func(ctx context.Context, m *sarama.ConsumerMessage) {
		select {
		case in <- m:
		case <-ctx.Done():
		}
	})
	defer stop()
	deadline := time.After(timeout)
	var out []*sarama.ConsumerMessage
	for len(out) < n {
		select {
		case m := <-in:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("%s: %d of %d records within %v", topic, len(out), n, timeout)
		}
	}
	return out
}

// DeadLetters reads n dead letters of topic within a minute (ReadCommitted).
func DeadLetters(t testing.TB, topic string, n int) []*imv1.DeadLetter {
	t.Helper()
	var out []*imv1.DeadLetter
	for _, m := range ReadCommitted(t, topic, n, time.Minute) {
		d := &imv1.DeadLetter{}
		if err := imv1.Unmarshal(m.Value, d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// consume runs a read_committed partition consumer from the oldest record
// for each of parts (nil: every partition of topic), handing every record
// to add, until stop.
func consume(t testing.TB, topic string, parts []int32, add func(context.Context, *sarama.ConsumerMessage)) (stop func()) {
	t.Helper()
	cfg := Kafka(t)
	consumer, err := sarama.NewConsumer(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		t.Fatalf("kafka is not reachable (%v); %s", err, startHint)
	}
	if parts == nil {
		if parts, err = consumer.Partitions(topic); err != nil {
			consumer.Close()
			t.Fatalf("partitions of %s: %v", topic, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait(); consumer.Close() }) }
	for _, p := range parts {
		// Waits out a topic created a moment ago (not the leader yet).
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
		if err != nil {
			stop()
			t.Fatalf("%s/%d: %v", topic, p, err)
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
					add(ctx, m)
				}
			}
		}()
	}
	return stop
}
