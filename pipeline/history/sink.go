package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
)

// Sink writes the sequenced topic into the history table: a consumer group
// (read_committed, manual offsets) with one goroutine per claimed
// partition, each inserting batches and committing their offsets only
// after ClickHouse took them. A crash between insert and commit writes a
// batch twice; ReplacingMergeTree collapses it and reads are dedup-safe.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	metrics *sinkMetrics

	dlqPartitions int32
	deadLetters   sarama.SyncProducer

	inSession atomic.Bool
	retrying  atomic.Int32
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, log: cfg.Logger, metrics: newSinkMetrics(cfg.Registerer)}, nil
}

// Ready fails until the sink is in a consumer group session, and while a
// partition waits for ClickHouse.
func (s *Sink) Ready(context.Context) error {
	if !s.inSession.Load() {
		return errors.New("not in a consumer group session")
	}
	if n := s.retrying.Load(); n > 0 {
		return fmt.Errorf("%d partitions waiting for clickhouse", n)
	}
	return nil
}

// Run consumes until ctx is cancelled; then each partition writes and
// commits the batch in hand (for up to ShutdownTimeout) and the sink
// leaves the group.
func (s *Sink) Run(ctx context.Context) error {
	t := s.cfg.Topics
	admin, err := s.cfg.Kafka.NewAdmin()
	if err != nil {
		return fmt.Errorf("history sink: %w", err)
	}
	_, err = kafkawire.PartitionCount(admin, t.Sequenced)
	if err == nil {
		s.dlqPartitions, err = kafkawire.PartitionCount(admin, t.DeadLetter)
	}
	admin.Close()
	if err != nil {
		return fmt.Errorf("history sink: %w", err)
	}
	pcfg := s.cfg.Kafka.IdempotentProducerConfig()
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner // deadLetter chooses, keyless records too
	s.deadLetters, err = sarama.NewSyncProducer(s.cfg.Kafka.BrokerList(), pcfg)
	if err != nil {
		return fmt.Errorf("history sink: dead-letter producer: %w", err)
	}
	defer s.deadLetters.Close()

	gcfg := s.cfg.Kafka.ConsumerGroupConfig()
	gcfg.Consumer.Group.Session.Timeout = s.cfg.SessionTimeout
	gcfg.Consumer.Group.Heartbeat.Interval = s.cfg.SessionTimeout / 5
	group, err := sarama.NewConsumerGroup(s.cfg.Kafka.BrokerList(), s.cfg.GroupID, gcfg)
	if err != nil {
		return fmt.Errorf("history sink: join group %s: %w", s.cfg.GroupID, err)
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			s.log.Warn("consumer group error", "err", err)
		}
	}()
	s.log.Info("history sink started", "topic", t.Sequenced, "group", s.cfg.GroupID)
	b := newBackoff(time.Second, 10*time.Second)
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{t.Sequenced}, groupHandler{s})
		if err == nil || ctx.Err() != nil {
			b.reset()
			continue
		}
		s.log.Warn("consumer group session failed; rejoining", "err", err, "backoff", b.next)
		b.wait(ctx)
	}
	s.log.Info("history sink stopped")
	return nil
}

type groupHandler struct{ s *Sink }

func (h groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.inSession.Store(true)
	h.s.log.Info("group session started", "generation", sess.GenerationID(), "claims", sess.Claims())
	go h.s.commitLoop(sess)
	return nil
}

// Cleanup runs once every partition of the session has stopped: the last
// batches they wrote are committed here.
func (h groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	h.s.inSession.Store(false)
	return nil
}

// commitLoop commits the offsets the partitions marked after their inserts.
// Committing apart from the partitions keeps them inserting: a commit waits
// on the coordinator's connection behind the fetches' long polls (up to
// Consumer.MaxWaitTime, 500ms).
func (s *Sink) commitLoop(sess sarama.ConsumerGroupSession) {
	tick := time.NewTicker(s.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-sess.Context().Done():
			return
		case <-tick.C:
			sess.Commit() // errors go to the group's Errors(); a failed commit only means a re-insert
		}
	}
}

// ConsumeClaim is the partition's goroutine: the only writer of its
// conversations' rows and offsets in this session.
func (h groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	s.metrics.partitions.Inc()
	defer s.metrics.partitions.Dec()
	label := fmt.Sprint(claim.Partition())
	defer s.metrics.lag.DeleteLabelValues(label)
	p := &partition{s: s, sess: sess, claim: claim, lag: s.metrics.lag.WithLabelValues(label),
		log: s.log.With("partition", claim.Partition())}
	p.run()
	return nil
}
