package kafkawire_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestGroupWaitsForBrokersThatDoNotAnswerYet: issue 15's "no exit on a
// transient broker condition". A group whose brokers refuse connections
// (a broker restarting as the service starts) keeps trying instead of
// returning an error, and consumes once they answer.
func TestGroupWaitsForBrokersThatDoNotAnswerYet(t *testing.T) {
	cfg := stacktest.Kafka(t)
	topic := stacktest.Name(t, "start")
	admin := stacktest.Admin(t)
	if err := kafkawire.EnsureTopics(admin, kafkawire.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1, Config: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.DeleteTopic(topic) })

	// An address nothing listens on yet: the bootstrap broker of the group.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := ln.Addr().String()
	ln.Close()
	gcfg := cfg
	gcfg.Brokers = []string{gate}

	retried := make(chan struct{})
	logs := &signalWriter{want: []byte("cannot join the consumer group yet"), seen: retried}
	got := make(chan *sarama.ConsumerMessage, 10)
	group, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: gcfg, GroupID: topic + ".group", Topic: topic,
		CommitInterval: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))}, collectStage{got})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of the cancel")
		}
	}()
	select {
	case <-retried:
	case err := <-done:
		done <- err // for the deferred check
		t.Fatalf("Run returned while the brokers did not answer: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no retry logged within 30 s")
	}

	// The broker answers now (through the gate; its metadata then names
	// the broker's own address).
	ln, err = net.Listen("tcp", gate)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go forward(ln, cfg.Brokers[0])
	w := cfg.NewProducer(topic)
	defer w.Close()
	if err := w.Write(ctx, kafka.Message{Key: []byte("k"), Value: []byte("after the wait")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Value) != "after the wait" {
			t.Fatalf("consumed %q", m.Value)
		}
	case err := <-done:
		done <- err
		t.Fatalf("Run returned: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("nothing consumed within a minute of the brokers answering")
	}
}

// signalWriter closes seen once want was written to it.
type signalWriter struct {
	mu   sync.Mutex
	buf  []byte
	want []byte
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// forward relays every connection accepted on ln to addr.
func forward(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer up.Close()
			go io.Copy(up, c)
			io.Copy(c, up)
		}()
	}
}

// collectStage hands every consumed record to a channel.
type collectStage struct {
	got chan<- *sarama.ConsumerMessage
}

func (collectStage) BeforeSession(context.Context) error { return nil }
func (collectStage) Setup(*kafkawire.Session) error      { return nil }
func (collectStage) Cleanup(*kafkawire.Session)          {}
func (s collectStage) Open(*kafkawire.Session, int32) (kafkawire.Partition, error) {
	return collectPartition(s), nil
}

type collectPartition collectStage

func (p collectPartition) Process(b kafkawire.Batch) error {
	for _, m := range b.Records {
		p.got <- m
	}
	return nil
}
func (collectPartition) Close() {}
