package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/coalesce"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// Sink writes the sequenced topic into the history table: a consumer group
// (read_committed, manual offsets) with one goroutine per claimed
// partition, whose batches go into ClickHouse in inserts shared by every
// partition of the instance (ClickHouse wants few inserts of many rows);
// a partition's offsets are marked only after its rows were inserted. A
// crash between insert and commit writes rows twice; ReplacingMergeTree
// collapses them and reads are dedup-safe.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	metrics *sinkMetrics

	dlqPartitions int32
	deadLetters   sarama.SyncProducer
	topicsWait    kafkawire.TopicsWait

	failing atomic.Int32 // writes being retried
	waiting atomic.Int32 // partitions whose batch waits for a write

	mu      sync.Mutex
	group   *kafkawire.Group
	session *sinkSession
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, log: cfg.Logger}
	s.metrics = newSinkMetrics(cfg.Registerer, func() float64 { return float64(s.retrying()) })
	return s, nil
}

// Ready fails until the sink is in a consumer group session, and while a
// partition waits for ClickHouse.
func (s *Sink) Ready(context.Context) error {
	s.mu.Lock()
	g := s.group
	s.mu.Unlock()
	if g == nil {
		if err := s.topicsWait.Err(); err != nil {
			return err
		}
		return errors.New("not consuming yet")
	}
	if err := g.Ready(); err != nil {
		return err
	}
	if n := s.retrying(); n > 0 {
		return fmt.Errorf("%d partitions waiting for clickhouse", n)
	}
	return nil
}

// retrying is the number of partitions held up by failing writes: every
// partition waiting on a write while one is being retried (those in the
// failing insert and those queued behind it).
func (s *Sink) retrying() int32 {
	if s.failing.Load() == 0 {
		return 0
	}
	return s.waiting.Load()
}

// Run consumes until ctx is cancelled; then each partition writes and
// commits the batch in hand (for up to ShutdownTimeout) and the sink
// leaves the group.
func (s *Sink) Run(ctx context.Context) error {
	t := s.cfg.Topics
	err := s.topicsWait.Await(ctx, s.log, s.cfg.Kafka, func(admin sarama.ClusterAdmin) (err error) {
		if _, err = kafkawire.PartitionCount(admin, t.Sequenced); err != nil {
			return err
		}
		if s.dlqPartitions, err = kafkawire.PartitionCount(admin, t.DeadLetter); err != nil {
			return err
		}
		// Opened in the wait too: brokers that stop answering right
		// after the topics were seen are waited for, not a reason to exit.
		pcfg := s.cfg.Kafka.IdempotentProducerConfig()
		pcfg.Producer.Partitioner = sarama.NewManualPartitioner // deadLetter chooses, keyless records too
		if s.deadLetters, err = sarama.NewSyncProducer(s.cfg.Kafka.BrokerList(), pcfg); err != nil {
			return fmt.Errorf("dead-letter producer: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("history sink: %w", err)
	}
	if s.deadLetters != nil {
		defer s.deadLetters.Close()
	}
	if ctx.Err() != nil {
		return nil
	}

	group, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: s.cfg.Kafka, GroupID: s.cfg.GroupID, Topic: t.Sequenced,
		SessionTimeout: s.cfg.SessionTimeout, MaxBatch: s.cfg.BatchMaxRows, Linger: s.cfg.BatchMaxWait,
		CommitInterval: s.cfg.CommitInterval, FlushOnEnd: true, Lag: s.metrics.lag, Pending: s.metrics.pending,
		Commits: s.metrics.commits, Logger: s.log}, s)
	if err != nil {
		return fmt.Errorf("history sink: %w", err)
	}
	s.mu.Lock()
	s.group = group
	s.mu.Unlock()
	s.log.Info("history sink started", "topic", t.Sequenced, "group", s.cfg.GroupID)
	err = group.Run(ctx)
	s.log.Info("history sink stopped")
	return err
}

// sinkSession is what a session's partitions share: the inserter and the
// deadline of their writes (ShutdownTimeout past the session's end).
type sinkSession struct {
	inserter *coalesce.Batcher[writes]
	writeCtx context.Context
	stop     context.CancelFunc
	done     chan struct{}
}

// BeforeSession: nothing to prepare.
func (s *Sink) BeforeSession(context.Context) error { return nil }

// Setup starts the session's inserter: an insert carries the rows of every
// partition that submitted within BatchMaxWait, and goes as soon as each
// claimed partition has submitted.
func (s *Sink) Setup(sess *kafkawire.Session) error {
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	writeCtx, stop := graceContext(sess.Context(), s.cfg.ShutdownTimeout)
	ss := &sinkSession{inserter: coalesce.New[writes](s.cfg.BatchMaxWait, max(n, 1), nil), writeCtx: writeCtx, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(ss.done)
		ss.inserter.Run(writeCtx, func(parts []writes) error { return s.insert(writeCtx, parts) })
	}()
	s.mu.Lock()
	s.session = ss
	s.mu.Unlock()
	return nil
}

// Cleanup stops the session's inserter once every partition is done.
func (s *Sink) Cleanup(*kafkawire.Session) {
	s.mu.Lock()
	ss := s.session
	s.session = nil
	s.mu.Unlock()
	if ss != nil {
		ss.stop()
		<-ss.done
	}
}

// Open starts writing a claimed partition.
func (s *Sink) Open(_ *kafkawire.Session, p int32) (kafkawire.Partition, error) {
	s.mu.Lock()
	ss := s.session
	s.mu.Unlock()
	s.metrics.partitions.Inc()
	return &partition{s: s, ss: ss, log: s.log.With("partition", p)}, nil
}
