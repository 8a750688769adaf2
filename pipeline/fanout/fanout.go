package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
)

// Config configures a Fanout.
type Config struct {
	Kafka  kafkawire.Config
	Topics kafkawire.Topics // zero fields get kafkawire's defaults
	// GroupID is the consumer group over the sequenced topic. Zero means "seqchat-fanout".
	GroupID string
	// BatchMaxRecords caps the entries routed per commit. Zero means 1000.
	BatchMaxRecords int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	c.Topics = c.Topics.WithDefaults()
	if c.GroupID == "" {
		c.GroupID = "seqchat-fanout"
	}
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.BatchMaxRecords < 1 {
		return errors.New("fanout: batch max records must be at least 1")
	}
	return nil
}

// Fanout routes every sequenced entry to the topics of the gateways where
// its recipients' devices are connected, once per gateway, with the list of
// recipient devices. Delivery is at least once: after a restart, entries
// since the last commit are routed again, and the gateways' reorder
// buffers drop what a device already has.
type Fanout struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	inSession atomic.Bool  // in a consumer group session
	restoring atomic.Int32 // claimed partitions still restoring
	presence  *presenceView
	client    sarama.Client
	state     sarama.SyncProducer // membership periods, to explicit partitions
	delivery  sarama.SyncProducer // gateway topics, murmur2 by conversation
	gateways  *gatewayTopics
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Fanout, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fanout{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registerer), presence: newPresenceView(cfg.Logger)}, nil
}

// Ready fails until the presence table has caught up with its topic.
func (f *Fanout) Ready(context.Context) error {
	switch {
	case !f.presence.caughtUp.Load():
		return errors.New("presence table not caught up")
	case !f.inSession.Load():
		return errors.New("not in a consumer group session")
	case f.restoring.Load() > 0:
		return fmt.Errorf("restoring %d partitions", f.restoring.Load())
	}
	return nil
}

// Run routes until ctx is cancelled. It refuses to start unless the
// sequenced and fanout-membership topics are co-partitioned.
func (f *Fanout) Run(ctx context.Context) error {
	t := f.cfg.Topics
	admin, err := f.cfg.Kafka.NewAdmin()
	if err != nil {
		return err
	}
	_, err = kafkawire.CheckCoPartitioned(admin, t.Sequenced, t.FanoutMembers)
	admin.Close()
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	clientCfg := f.cfg.Kafka.ConsumerGroupConfig()
	// A gateway that is gone must not stall routing: fail its metadata fast.
	clientCfg.Metadata.Retry.Max = 1
	clientCfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	client, err := sarama.NewClient(f.cfg.Kafka.BrokerList(), clientCfg)
	if err != nil {
		return fmt.Errorf("fanout: connect: %w", err)
	}
	defer client.Close()
	f.client = client
	f.gateways = newGatewayTopics(client)
	stateCfg := f.cfg.Kafka.IdempotentProducerConfig()
	stateCfg.Producer.Partitioner = sarama.NewManualPartitioner
	if f.state, err = sarama.NewSyncProducer(f.cfg.Kafka.BrokerList(), stateCfg); err != nil {
		return fmt.Errorf("fanout: state producer: %w", err)
	}
	defer f.state.Close()
	if f.delivery, err = sarama.NewSyncProducer(f.cfg.Kafka.BrokerList(), f.cfg.Kafka.IdempotentProducerConfig()); err != nil {
		return fmt.Errorf("fanout: delivery producer: %w", err)
	}
	defer f.delivery.Close()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.presence.run(ctx, client, t.Presence) })
	g.Go(func() error { return f.route(ctx) })
	return g.Wait()
}

// route runs the consumer group over the sequenced topic once presence has
// caught up (routing earlier would miss connected devices).
func (f *Fanout) route(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-f.presence.ready:
	}
	group, err := sarama.NewConsumerGroup(f.cfg.Kafka.BrokerList(), f.cfg.GroupID, f.cfg.Kafka.ConsumerGroupConfig())
	if err != nil {
		return fmt.Errorf("fanout: join group %s: %w", f.cfg.GroupID, err)
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			f.log.Warn("consumer group error", "err", err)
		}
	}()
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{f.cfg.Topics.Sequenced}, handler{f}); err != nil && ctx.Err() == nil {
			f.log.Warn("consumer group session failed; rejoining", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	f.log.Info("fanout stopped")
	return nil
}

type handler struct{ f *Fanout }

// Setup counts the claimed partitions as restoring: the fanout is ready
// once each has its membership periods back.
func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	h.f.restoring.Store(int32(n))
	h.f.inSession.Store(true)
	return nil
}

func (h handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.f.inSession.Store(false)
	h.f.restoring.Store(0)
	return nil
}

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	f := h.f
	f.metrics.partitions.Inc()
	defer f.metrics.partitions.Dec()
	w, err := f.startWorker(sess.Context(), claim.Partition())
	f.restoring.Add(-1)
	if err != nil {
		f.log.Error("partition restore failed", "partition", claim.Partition(), "err", err)
		return err
	}
	defer w.close()
	return w.run(sess, claim)
}
