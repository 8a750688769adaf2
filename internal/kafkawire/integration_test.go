package kafkawire_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestKeyedRecordsLandWherePredicted produces keyed records with the kafka-go
// Producer and reads them back with a sarama consumer group (read_committed):
// every record must arrive, on the partition PartitionFor predicts, in the
// order it was written within its key.
func TestKeyedRecordsLandWherePredicted(t *testing.T) {
	const partitions, keys, perKey = 6, 50, 8
	cfg := stacktest.Kafka(t)
	topic := stacktest.Topic(t, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	p := cfg.NewProducer(topic)
	defer p.Close()
	var msgs []kafka.Message
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("g:%d", k)), Value: []byte(fmt.Sprint(i))})
		}
	}
	if err := p.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	got := consume(ctx, t, cfg.ConsumerGroupConfig(), topic, len(msgs))
	next := map[string]int{}
	for _, m := range got {
		key := string(m.Key)
		if want := kafkawire.PartitionFor(m.Key, partitions); int(m.Partition) != want {
			t.Errorf("key %s on partition %d, PartitionFor says %d", key, m.Partition, want)
		}
		if v := string(m.Value); v != fmt.Sprint(next[key]) {
			t.Errorf("key %s: got value %s, want %d (order within a key)", key, v, next[key])
		}
		next[key]++
	}
	for k := 0; k < keys; k++ {
		if n := next[fmt.Sprintf("g:%d", k)]; n != perKey {
			t.Errorf("key g:%d: %d records arrived, want %d", k, n, perKey)
		}
	}
}

func TestProducerRefusesKeylessRecords(t *testing.T) {
	cfg := stacktest.Kafka(t)
	p := cfg.NewProducer(stacktest.Topic(t, 1, nil))
	defer p.Close()
	err := p.Write(context.Background(), kafka.Message{Value: []byte("x")})
	if !errors.Is(err, kafkawire.ErrNoKey) {
		t.Fatalf("keyless write: error = %v, want ErrNoKey", err)
	}
}

// TestTransactionsCommitAndAbort: a committed transaction is visible to a
// read_committed consumer and an aborted one is not, although its records
// are in the log (a read_uncommitted consumer sees them).
func TestTransactionsCommitAndAbort(t *testing.T) {
	cfg := stacktest.Kafka(t)
	topic := stacktest.Topic(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	prod, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(prefix string, from, to int, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0,
				Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i))})
			if err != nil {
				t.Fatal(err)
			}
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	txn("committed", 0, 10, true)
	txn("aborted", 0, 10, false)
	txn("committed", 10, 20, true)

	// The aborted records sit between the two committed transactions, so
	// reading all 20 committed ones means the reader went past them.
	for _, m := range consume(ctx, t, cfg.ConsumerGroupConfig(), topic, 20) {
		if strings.HasPrefix(string(m.Value), "aborted") {
			t.Errorf("read_committed consumer saw %s at offset %d", m.Value, m.Offset)
		}
	}

	uncommitted := cfg.ConsumerGroupConfig()
	uncommitted.Consumer.IsolationLevel = sarama.ReadUncommitted
	aborted := 0
	for _, m := range consume(ctx, t, uncommitted, topic, 30) {
		if strings.HasPrefix(string(m.Value), "aborted") {
			aborted++
		}
	}
	if aborted != 10 {
		t.Fatalf("read_uncommitted consumer saw %d aborted records, want 10 (the abort test proves nothing)", aborted)
	}
}

// consume reads n records of topic with a fresh consumer group and config.
func consume(ctx context.Context, t *testing.T, config *sarama.Config, topic string, n int) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := stacktest.Kafka(t)
	group, err := sarama.NewConsumerGroup(cfg.BrokerList(), stacktest.Name(t, "group"), config)
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan *sarama.ConsumerMessage)
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, collector{out}); err != nil && ctx.Err() == nil {
				errc <- err
				return
			}
		}
	}()
	var got []*sarama.ConsumerMessage
	for len(got) < n {
		select {
		case m := <-out:
			got = append(got, m)
		case err := <-errc:
			t.Fatalf("consume %s: %v", topic, err)
		case <-ctx.Done():
			t.Fatalf("consume %s: %d of %d records before the deadline", topic, len(got), n)
		}
	}
	return got
}

type collector struct {
	out chan<- *sarama.ConsumerMessage
}

func (collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case c.out <- m:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// TestSenderEnqueueKeepsEachCallersOrder: callers that enqueue records
// without waiting for each acknowledgement (as a gateway connection does
// with its sends) find them on the topic in the order each enqueued them,
// every one exactly once.
func TestSenderEnqueueKeepsEachCallersOrder(t *testing.T) {
	const partitions, callers, perCaller = 4, 8, 300
	cfg := stacktest.Kafka(t)
	topic := stacktest.Topic(t, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	s, err := cfg.NewSender(topic, kafkawire.DefaultSendLinger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errs := make(chan error, callers)
	for c := 0; c < callers; c++ {
		go func() {
			key := []byte(fmt.Sprintf("caller-%d", c))
			var pending []*kafkawire.Pending
			for i := 0; i < perCaller; i++ {
				p, err := s.Enqueue(ctx, key, []byte(fmt.Sprint(i)))
				if err != nil {
					errs <- err
					return
				}
				pending = append(pending, p)
			}
			for _, p := range pending {
				if err := p.Wait(ctx); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for c := 0; c < callers; c++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	next := map[string]int{}
	for _, m := range consume(ctx, t, cfg.ConsumerGroupConfig(), topic, callers*perCaller) {
		key := string(m.Key)
		if v := string(m.Value); v != fmt.Sprint(next[key]) {
			t.Fatalf("%s: got record %s, want %d (the order it was enqueued in)", key, v, next[key])
		}
		next[key]++
	}
	for c := 0; c < callers; c++ {
		if n := next[fmt.Sprintf("caller-%d", c)]; n != perCaller {
			t.Errorf("caller-%d: %d records arrived, want %d", c, n, perCaller)
		}
	}
}
