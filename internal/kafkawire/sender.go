package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// DefaultSendLinger is the ingest path's linger: at 2,000 records/s it
// took the broker's CPU per record from about 240 µs (no linger) to 155 µs
// for 1.5 ms more per acknowledgement (docs/benchmarks.md).
const DefaultSendLinger = time.Millisecond

// ErrSenderClosed answers sends after Close.
var ErrSenderClosed = errors.New("kafkawire: sender closed")

// Sender writes keyed records to one topic for many concurrent callers,
// each of whom waits for its own record's acknowledgement (acks=all).
// sarama's idempotent async producer underneath puts the records of every
// partition that arrive within Linger into one request per broker, keeps
// each partition's order, and never duplicates a record on retry.
//
// Measured (docs/benchmarks.md): kafka-go's Writer sends one request per
// partition batch, and at 2,000 records/s over 8 partitions cost the
// broker about 510 µs of CPU per record; this costs it about 150 µs at a
// 1 ms linger. The hot path's raw topic is written with a Sender; the
// kafka-go Producer stays for occasional writes (presence, tools).
type Sender struct {
	topic    string
	producer sarama.AsyncProducer
	wg       sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// NewSender connects a sender to topic. linger is how long a request waits
// for more records once it has one (zero: as soon as the last one is
// answered).
func (c Config) NewSender(topic string, linger time.Duration) (*Sender, error) {
	cfg := c.IdempotentProducerConfig()
	cfg.Producer.Flush.Frequency = linger
	// Ride out a leader move or a broker restart inside the callers' own
	// deadlines rather than failing the record early.
	cfg.Producer.Retry.Max = 30
	cfg.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(50*time.Millisecond<<min(retries, 5), time.Second)
	}
	p, err := sarama.NewAsyncProducer(c.BrokerList(), cfg)
	if err != nil {
		return nil, fmt.Errorf("producer for %s: %w", topic, err)
	}
	s := &Sender{topic: topic, producer: p}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for m := range p.Successes() {
			m.Metadata.(chan error) <- nil
		}
	}()
	go func() {
		defer s.wg.Done()
		for e := range p.Errors() {
			e.Msg.Metadata.(chan error) <- e.Err
		}
	}()
	return s, nil
}

// Send writes one record and returns once the broker acknowledged it, or
// with an error when it failed or ctx ended first (the record may then
// still be written: the caller retries with the same idempotency key).
func (s *Sender) Send(ctx context.Context, key, value []byte) error {
	p, err := s.Enqueue(ctx, key, value)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Pending is a record handed to the producer whose acknowledgement has
// not been awaited yet.
type Pending struct {
	topic  string
	result chan error
}

// Enqueue hands one record to the producer without waiting for the
// broker: records one caller enqueues one after another with keys of one
// partition are written in that order (the producer is idempotent), so a
// caller can have many in flight and still keep its order. It blocks only
// while the producer's input is full, until ctx ends.
func (s *Sender) Enqueue(ctx context.Context, key, value []byte) (*Pending, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("write to %s: %w", s.topic, ErrNoKey)
	}
	p := &Pending{topic: s.topic, result: make(chan error, 1)}
	m := &sarama.ProducerMessage{Topic: s.topic, Key: sarama.ByteEncoder(key), Value: sarama.ByteEncoder(value), Metadata: p.result}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("write to %s: %w", s.topic, ErrSenderClosed)
	}
	select {
	case s.producer.Input() <- m:
		return p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("write to %s: %w", s.topic, ctx.Err())
	}
}

// Wait returns once the broker acknowledged the record, or with an error
// when it failed or ctx ended first (the record may then still be
// written). Call it once.
func (p *Pending) Wait(ctx context.Context) error {
	select {
	case err := <-p.result:
		if err != nil {
			return fmt.Errorf("write to %s: %w", p.topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write to %s: %w", p.topic, ctx.Err())
	}
}

// Close flushes what was sent and closes the producer; later sends fail.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.producer.AsyncClose()
	s.wg.Wait()
	return nil
}
