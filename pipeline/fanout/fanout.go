package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// DefaultCommitInterval is Config.CommitInterval when zero.
const DefaultCommitInterval = time.Second

// DefaultReceiptsMaxMembers is Config.ReceiptsMaxMembers when zero.
const DefaultReceiptsMaxMembers = 100

// Config configures a Fanout.
type Config struct {
	Kafka kafkawire.Config
	// Topics are generation 1's names (zero fields get kafkawire's
	// defaults); a later generation's partitioned topics are derived from
	// them (generation.Topics).
	Topics kafkawire.Topics
	// Generation is the generation of the sequenced and membership topics
	// this instance routes (docs/architecture.md, Repartitioning). Zero
	// means 1. An instance of generation g > 1 imports each partition's
	// periods and heads from generation g-1 once g-1 routed everything
	// of the partitions that feed it.
	Generation uint32
	// GroupID is generation 1's consumer group over the sequenced topic; a
	// later generation's is GroupID.g<g>. Zero means "seqchat-fanout".
	GroupID string
	// BatchMaxRecords caps the entries routed at once. Zero means 1000.
	BatchMaxRecords int
	// CommitInterval is how often the routed offsets are committed. A
	// restart routes again at most this much (the gateways drop what a
	// device already has). Zero means 1s.
	CommitInterval time.Duration
	// SessionTimeout of the consumer group. Zero means 10s.
	SessionTimeout time.Duration
	// ReceiptsMaxMembers: a read receipt of a group with at most this many
	// members goes to every member; of a larger one only to the reader's
	// devices (members read "k of n" from history). Zero means
	// DefaultReceiptsMaxMembers; negative means no group gets receipts
	// beyond the reader's devices.
	ReceiptsMaxMembers int
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
		c.GroupID = "seqchat-fanout"
	}
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = 1000
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.ReceiptsMaxMembers == 0 {
		c.ReceiptsMaxMembers = DefaultReceiptsMaxMembers
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchMaxRecords < 1:
		return errors.New("fanout: batch max records must be at least 1")
	case c.CommitInterval < 0:
		return errors.New("fanout: commit interval must not be negative")
	}
	return nil
}

// Fanout routes every sequenced entry to the topics of the gateways where
// its recipients' devices are connected, once per gateway, with the list of
// recipient devices. Delivery is at least once: after a restart, entries
// since the last commit are routed again, and the gateways' reorder
// buffers drop what a device already has.
type Fanout struct {
	cfg Config
	// topics are the generation's (cfg.Topics keeps generation 1's) and
	// group its consumer group.
	topics  kafkawire.Topics
	group   string
	log     *slog.Logger
	metrics *metrics

	presence *presenceView
	client   sarama.Client
	restorer sarama.Consumer     // reads membership periods on assignment
	offsets  sarama.Client       // reads the ends a restore reads to
	producer sarama.SyncProducer // membership periods and deliveries, to explicit partitions
	gateways *gatewayTopics
	// partitions is the sequenced topic's partition count, prevPartitions
	// the previous generation's (0 for the first, and once its topics are
	// deleted).
	partitions, prevPartitions int32
	topicsWait                 kafkawire.TopicsWait

	mu     sync.Mutex
	runner *kafkawire.Group
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Fanout, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fanout{cfg: cfg, topics: generation.Topics(cfg.Topics, cfg.Generation), group: generation.GroupID(cfg.GroupID, cfg.Generation),
		log: cfg.Logger.With("generation", cfg.Generation), metrics: newMetrics(cfg.Registerer), presence: newPresenceView(cfg.Logger)}, nil
}

// Ready fails until the presence table has caught up with its topic and
// every claimed partition has its membership periods back.
func (f *Fanout) Ready(context.Context) error {
	if err := f.topicsWait.Err(); err != nil {
		return err
	}
	if !f.presence.caughtUp.Load() {
		return errors.New("presence table not caught up")
	}
	f.mu.Lock()
	g := f.runner
	f.mu.Unlock()
	if g == nil {
		return errors.New("not consuming yet")
	}
	return g.Ready()
}

// Run routes until ctx is cancelled. It refuses to start unless the
// sequenced and fanout-membership topics are co-partitioned.
func (f *Fanout) Run(ctx context.Context) error {
	t := f.topics
	// The clients are opened in the wait too: brokers that stop answering
	// right after the topics were seen are waited for, not a reason to exit.
	err := f.topicsWait.Await(ctx, f.log, f.cfg.Kafka, func(admin sarama.ClusterAdmin) (err error) {
		if f.partitions, err = kafkawire.CheckCoPartitioned(admin, t.Sequenced, t.FanoutMembers); err != nil {
			return err
		}
		if f.cfg.Generation > generation.First {
			// Only an import reads it; imctl repartition cleanup deletes it
			// once every partition of this generation imported.
			prev := generation.Topics(f.cfg.Topics, f.cfg.Generation-1).Sequenced
			if f.prevPartitions, _, err = kafkawire.PartitionCountIfExists(admin, prev); err != nil {
				return fmt.Errorf("the previous generation's sequenced topic: %w", err)
			}
		}
		return f.connect()
	})
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	defer f.disconnect()
	if ctx.Err() != nil {
		return nil
	}
	group, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: f.cfg.Kafka, GroupID: f.group, Topic: t.Sequenced,
		SessionTimeout: f.cfg.SessionTimeout, MaxBatch: f.cfg.BatchMaxRecords, CommitInterval: f.cfg.CommitInterval,
		Idle: routingStartedIdle, Lag: f.metrics.lag, Logger: f.log}, stage{f})
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	f.mu.Lock()
	f.runner = group
	f.mu.Unlock()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.presence.run(ctx, f.client, t.Presence) })
	g.Go(func() error { return f.route(ctx, group) })
	return g.Wait()
}

// connect opens the fanout's clients; on an error it closes those it opened.
func (f *Fanout) connect() (err error) {
	defer func() {
		if err != nil {
			f.disconnect()
		}
	}()
	clientCfg := f.cfg.Kafka.ConsumerGroupConfig()
	// A gateway that is gone must not stall routing: fail its metadata fast.
	clientCfg.Metadata.Retry.Max = 1
	clientCfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	if f.client, err = sarama.NewClient(f.cfg.Kafka.BrokerList(), clientCfg); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	f.gateways = newGatewayTopics(f.client)
	// Restores read to a known end: fetches that answer at once, on a
	// connection of their own (partitions restoring together over the
	// client's connection waited out each other's long polls, 0.5 s each:
	// 2-5 s per partition).
	rcfg := f.cfg.Kafka.ConsumerGroupConfig()
	rcfg.Consumer.MaxWaitTime = 10 * time.Millisecond
	if f.restorer, err = sarama.NewConsumer(f.cfg.Kafka.BrokerList(), rcfg); err != nil {
		return fmt.Errorf("restore consumer: %w", err)
	}
	// The ends a restore reads to, likewise: on client's connection each
	// waited behind the presence follower's long poll (2.5 s for a
	// restore's eight presence partitions).
	if f.offsets, err = sarama.NewClient(f.cfg.Kafka.BrokerList(), rcfg); err != nil {
		return fmt.Errorf("offsets client: %w", err)
	}
	pcfg := f.cfg.Kafka.IdempotentProducerConfig()
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner // route chooses every partition
	if f.producer, err = sarama.NewSyncProducer(f.cfg.Kafka.BrokerList(), pcfg); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	return nil
}

// disconnect closes the clients connect opened.
func (f *Fanout) disconnect() {
	if f.producer != nil {
		f.producer.Close()
		f.producer = nil
	}
	if f.offsets != nil {
		f.offsets.Close()
		f.offsets = nil
	}
	if f.restorer != nil {
		f.restorer.Close()
		f.restorer = nil
	}
	if f.client != nil {
		f.client.Close()
		f.client = nil
	}
}

// routingStartedIdle: an idle partition's worker runs this often, so that
// a device connecting while nothing is sent still hears, from every
// partition, that it is routed to (RoutingStarted).
const routingStartedIdle = 250 * time.Millisecond

// route runs the consumer group over the sequenced topic once presence has
// caught up (routing earlier would miss connected devices).
func (f *Fanout) route(ctx context.Context, group *kafkawire.Group) error {
	select {
	case <-ctx.Done():
		return nil
	case <-f.presence.ready:
	}
	err := group.Run(ctx)
	f.log.Info("fanout stopped")
	return err
}

// stage opens a worker per claimed partition of the sequenced topic.
type stage struct{ f *Fanout }

func (stage) BeforeSession(context.Context) error { return nil }
func (stage) Setup(*kafkawire.Session) error      { return nil }
func (stage) Cleanup(*kafkawire.Session)          {}

func (s stage) Open(sess *kafkawire.Session, p int32) (kafkawire.Partition, error) {
	w, err := s.f.startWorker(sess.Context(), p)
	if err != nil {
		s.f.log.Error("partition restore failed", "partition", p, "err", err)
		return nil, err
	}
	s.f.metrics.partitions.Inc()
	return w, nil
}
