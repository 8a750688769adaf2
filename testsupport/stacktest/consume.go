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
	cfg := Kafka(t)
	consumer, err := sarama.NewConsumer(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); consumer.Close() })
	for p := int32(0); p < partitions; p++ {
		// Waits out a topic created a moment ago (not the leader yet).
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
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
					add(m)
				}
			}
		}()
	}
}

// ReadCommitted reads n records of topic (every partition, from the oldest,
// read_committed) in the order they arrive, failing the test if fewer
// arrive within timeout.
func ReadCommitted(t testing.TB, topic string, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := Kafka(t)
	client, err := sarama.NewClient(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		t.Fatalf("kafka is not reachable (%v); %s", err, startHint)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	in := make(chan *sarama.ConsumerMessage)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the goroutines are waited for
	for _, p := range parts {
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("%s/%d: %v", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					select {
					case in <- m:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var out []*sarama.ConsumerMessage
	for len(out) < n {
		select {
		case m := <-in:
			out = append(out, m)
		case <-ctx.Done():
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
