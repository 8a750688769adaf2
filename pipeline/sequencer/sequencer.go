package sequencer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// Defaults of Config's batching (what a zero field means), shared with the
// floor benchmark (tools/floor), which mirrors the sequencer's wiring.
const (
	DefaultBatchMaxWait      = time.Millisecond
	DefaultTransactionLinger = 5 * time.Millisecond
)

// Config configures a Sequencer.
type Config struct {
	Kafka kafkawire.Config
	// Topics are generation 1's names (zero fields get kafkawire's
	// defaults); a later generation's partitioned topics are derived from
	// them (generation.Topics).
	Topics kafkawire.Topics
	// Generation is the generation of the partitioned topics this instance
	// sequences (docs/architecture.md, Repartitioning). Zero means 1. An
	// instance of generation g > 1 imports each partition's state from
	// generation g-1 at the partition's first batch, once g-1 handed its
	// conversations over (a fence).
	Generation uint32
	// GroupID is generation 1's consumer group over the raw topic; a later
	// generation's is GroupID.g<g>. Zero means "seqchat-sequencer".
	GroupID string
	// TransactionalIDPrefix names the instance's transactional producer:
	// <prefix>-<instance id> with Kafka.InstanceID, else <prefix>-<random>.
	// A restart with the same instance id aborts what the previous
	// incarnation left open at once; without one, the broker aborts it at
	// the transaction timeout. Zero means GroupID; a generation after the
	// first appends .g<g> (as to GroupID).
	TransactionalIDPrefix string
	// Machine bounds the per-partition state.
	Machine Options
	// BatchMaxRecords caps the raw records a partition applies at once.
	// Zero means 5000 (measured: docs/benchmarks.md).
	BatchMaxRecords int
	// BatchMaxWait is how long a partition's batch waits for more records
	// once it has one. Zero means 1ms; negative means never wait.
	BatchMaxWait time.Duration
	// TransactionLinger is how long a transaction, once it has one
	// partition's batch, waits for the other partitions' before it commits:
	// fewer, fuller transactions cost the broker less (about 2 ms of its CPU
	// each, docs/benchmarks.md). Zero means 5ms; negative means never wait.
	TransactionLinger time.Duration
	// HeadsInterval: how often each partition writes a heartbeat of its
	// conversations' last seqs to the heads topic (only when some changed),
	// in the transaction of those seqs; gateways find stalled deliveries
	// with it. Zero means 1s; negative means none.
	HeadsInterval time.Duration
	// SessionTimeout of the consumer group: how soon a dead instance's
	// partitions move. Zero means 10s (the broker's minimum is 6s).
	SessionTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	c.Topics = c.Topics.WithDefaults()
	if c.Generation == 0 {
		c.Generation = generation.First
	}
	if c.GroupID == "" {
		c.GroupID = "seqchat-sequencer"
	}
	if c.TransactionalIDPrefix == "" {
		c.TransactionalIDPrefix = c.GroupID
	}
	c.GroupID = generation.GroupID(c.GroupID, c.Generation)
	c.TransactionalIDPrefix = generation.GroupID(c.TransactionalIDPrefix, c.Generation)
	c.Machine = c.Machine.withDefaults()
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = 5000
	}
	if c.BatchMaxWait == 0 {
		c.BatchMaxWait = DefaultBatchMaxWait
	}
	if c.TransactionLinger == 0 {
		c.TransactionLinger = DefaultTransactionLinger
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeadsInterval == 0 {
		c.HeadsInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchMaxRecords < 1:
		return errors.New("sequencer: batch max records must be at least 1")
	case c.Machine.HoldWindow < 0:
		return errors.New("sequencer: hold window must not be negative")
	case c.Machine.RecentPerConversation < 1 || c.Machine.MaxHeldPerConversation < 1 || c.Machine.MaxOpenRangesPerDevice < 1:
		return errors.New("sequencer: recent, held and open-range bounds must be at least 1")
	case c.SessionTimeout < 6*time.Second:
		return errors.New("sequencer: session timeout below the broker's 6s minimum")
	}
	return nil
}

// Sequencer consumes the raw topic as a consumer group and runs one
// partition worker per claimed partition; the workers' output, state
// changes and input offsets commit in the shared transactions of one
// producer per instance (kafkawire.TxnStage).
type Sequencer struct {
	cfg Config
	// topics: the partitioned topics of the instance's generation (and
	// the shared ones); cfg.Topics keeps generation 1's names.
	topics  kafkawire.Topics
	log     *slog.Logger
	metrics *metrics
	txnID   string

	dlqPartitions int32
	// partitions: of the generation's raw, sequenced and state topics.
	partitions int32
	// prevPartitions: the partition count of the previous generation (0
	// for the first, and once its topics are deleted), whose state
	// partitions are imported.
	prevPartitions int32
	// headsTopic receives the heartbeats once it is known to exist; nil
	// until then (a deployment from before it) and when heartbeats are off.
	headsTopic atomic.Pointer[headsTarget]
	state      sarama.Consumer // reads state partitions on restore

	topicsWait kafkawire.TopicsWait

	mu    sync.Mutex
	group *kafkawire.Group
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Sequencer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	instance := cfg.Kafka.InstanceID
	if instance == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		instance = hex.EncodeToString(b)
	}
	return &Sequencer{cfg: cfg, topics: generation.Topics(cfg.Topics, cfg.Generation), log: cfg.Logger.With("generation", cfg.Generation),
		metrics: newMetrics(cfg.Registerer), txnID: cfg.TransactionalIDPrefix + "-" + instance}, nil
}

// Ready fails until the instance is in a consumer group session with every
// claimed partition restored.
func (s *Sequencer) Ready(context.Context) error {
	s.mu.Lock()
	g := s.group
	s.mu.Unlock()
	if g == nil {
		if err := s.topicsWait.Err(); err != nil {
			return err
		}
		return errors.New("not started")
	}
	return g.Ready()
}

// Run sequences until ctx is cancelled. It refuses to start unless the raw,
// sequenced and state topics have the same partition count; it waits while
// they do not exist yet or the broker does not answer.
func (s *Sequencer) Run(ctx context.Context) error {
	t := s.topics
	var n int32
	err := s.topicsWait.Await(ctx, s.log, s.cfg.Kafka, func(admin sarama.ClusterAdmin) (err error) {
		if n, err = kafkawire.CheckCoPartitioned(admin, t.Raw, t.Sequenced, t.SequencerState); err != nil {
			return err
		}
		if s.dlqPartitions, err = kafkawire.PartitionCount(admin, t.DeadLetter); err != nil {
			return err
		}
		if s.cfg.Generation > generation.First {
			// Only an import reads it; imctl repartition cleanup deletes it
			// once every partition of this generation imported.
			prev := generation.Topics(s.cfg.Topics, s.cfg.Generation-1).SequencerState
			if s.prevPartitions, _, err = kafkawire.PartitionCountIfExists(admin, prev); err != nil {
				return fmt.Errorf("the previous generation's state topic: %w", err)
			}
		}
		// Opened in the wait too: brokers that stop answering right
		// after the topics were seen are waited for, not a reason to exit.
		if s.state, err = sarama.NewConsumer(s.cfg.Kafka.BrokerList(), s.stateConfig()); err != nil {
			return fmt.Errorf("state consumer: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sequencer: %w", err)
	}
	if s.state != nil {
		defer s.state.Close()
	}
	if ctx.Err() != nil {
		return nil
	}
	s.partitions = n
	s.log.Info("topics checked", "raw", t.Raw, "partitions", n, "transactional_id", s.txnID)
	if s.cfg.HeadsInterval > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); s.awaitHeadsTopic(ctx, n) }()
	}

	stage := kafkawire.NewTxnStage(kafkawire.TxnConfig{Kafka: s.cfg.Kafka, TransactionalID: s.txnID,
		Linger: max(s.cfg.TransactionLinger, 0), OnCommit: s.metrics.observeTxn, OnFail: s.failed, Logger: s.log}, s.startWorker)
	defer stage.Close()
	group, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: s.cfg.Kafka, GroupID: s.cfg.GroupID, Topic: t.Raw,
		SessionTimeout: s.cfg.SessionTimeout, MaxBatch: s.cfg.BatchMaxRecords, Linger: max(s.cfg.BatchMaxWait, 0),
		Idle: max(s.cfg.Machine.HoldWindow/8, 10*time.Millisecond), Lag: s.metrics.lag, Logger: s.log}, stage)
	if err != nil {
		return fmt.Errorf("sequencer: %w", err)
	}
	s.mu.Lock()
	s.group = group
	s.mu.Unlock()
	err = group.Run(ctx)
	s.log.Info("sequencer stopped")
	return err
}

// awaitHeadsTopic turns heartbeats on once the heads topic exists. A
// worker writes to its own partition number, modulo the heads topic's
// count when that differs from the raw topic's (every generation after a
// repartition shares the heads topic of the first; readers read every
// partition). Until then (a deployment from before the topic) sequencing
// goes on without heartbeats.
func (s *Sequencer) awaitHeadsTopic(ctx context.Context, partitions int32) {
	topic := s.topics.Heads
	retry := backoff.New(time.Second, time.Minute)
	for {
		admin, err := s.cfg.Kafka.NewAdmin()
		var n int32
		if err == nil {
			n, err = kafkawire.PartitionCount(admin, topic)
			admin.Close()
		}
		if err == nil && n > 0 {
			s.headsTopic.Store(&headsTarget{topic: topic, partitions: n})
			s.log.Info("heartbeats of conversation heads on", "topic", topic, "partitions", n, "raw_partitions", partitions)
			return
		}
		s.log.Warn("no heartbeats of conversation heads yet: gateways cannot detect stalled deliveries; `imctl topics create` creates the topic",
			"topic", topic, "err", err, "retry_in", retry.Next())
		if !retry.Wait(ctx) {
			return
		}
	}
}

// stateConfig configures the consumers of state partitions (read_committed).
func (s *Sequencer) stateConfig() *sarama.Config {
	c := s.cfg.Kafka.ConsumerGroupConfig()
	c.Consumer.Fetch.Default = 8 << 20 // a restore reads a whole partition: fewer, larger fetches
	return c
}

// headsTarget is the heads topic and its partition count.
type headsTarget struct {
	topic      string
	partitions int32
}

// failed counts a failed transaction: the session restarts from committed
// state (every partition restored again).
func (s *Sequencer) failed(err error) {
	s.metrics.failures.Inc()
	if kafkawire.Fenced(err) {
		s.metrics.fenced.Inc()
	}
	s.log.Error("transaction failed; restarting the group session", "err", err)
}
