package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
)

// Config configures a Sequencer.
type Config struct {
	Kafka  kafkawire.Config
	Topics kafkawire.Topics // zero fields get kafkawire's defaults
	// GroupID is the consumer group over the raw topic. Zero means "seqchat-sequencer".
	GroupID string
	// TransactionalIDPrefix names the transactional producers, one per raw
	// partition: <prefix>-<raw topic>-<partition>. Zero means GroupID.
	TransactionalIDPrefix string
	// Machine bounds the per-partition state.
	Machine Options
	// BatchMaxRecords caps the raw records in one transaction. Zero means 5000
	// (measured: docs/benchmarks.md).
	BatchMaxRecords int
	// BatchMaxWait is how long a transaction waits for more records once it
	// has one. Zero means 2ms; negative means never wait.
	BatchMaxWait time.Duration
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
	if c.GroupID == "" {
		c.GroupID = "seqchat-sequencer"
	}
	if c.TransactionalIDPrefix == "" {
		c.TransactionalIDPrefix = c.GroupID
	}
	c.Machine = c.Machine.withDefaults()
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = 5000
	}
	if c.BatchMaxWait == 0 {
		c.BatchMaxWait = 2 * time.Millisecond
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
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
// partition worker per claimed partition.
type Sequencer struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	dlqPartitions int32
	state         sarama.Consumer // reads state partitions on restore

	mu            sync.Mutex
	cancelSession context.CancelFunc
	inSession     atomic.Bool
	restoring     atomic.Int32
}

// New checks the configuration; Run connects.
func New(cfg Config) (*Sequencer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sequencer{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registerer)}, nil
}

// Ready fails until the instance is in a consumer group session with every
// claimed partition restored.
func (s *Sequencer) Ready(context.Context) error {
	if !s.inSession.Load() {
		return errors.New("not in a consumer group session")
	}
	if n := s.restoring.Load(); n > 0 {
		return fmt.Errorf("restoring %d partitions", n)
	}
	return nil
}

// Run sequences until ctx is cancelled. It refuses to start unless the raw,
// sequenced and state topics have the same partition count.
func (s *Sequencer) Run(ctx context.Context) error {
	t := s.cfg.Topics
	admin, err := s.cfg.Kafka.NewAdmin()
	if err != nil {
		return err
	}
	n, err := kafkawire.CheckCoPartitioned(admin, t.Raw, t.Sequenced, t.SequencerState)
	if err == nil {
		s.dlqPartitions, err = kafkawire.PartitionCount(admin, t.DeadLetter)
	}
	admin.Close()
	if err != nil {
		return fmt.Errorf("sequencer: %w", err)
	}
	s.log.Info("topics checked", "raw", t.Raw, "partitions", n)

	stateCfg := s.cfg.Kafka.ConsumerGroupConfig()
	s.state, err = sarama.NewConsumer(s.cfg.Kafka.BrokerList(), stateCfg)
	if err != nil {
		return fmt.Errorf("sequencer: state consumer: %w", err)
	}
	defer s.state.Close()

	groupCfg := s.cfg.Kafka.ConsumerGroupConfig()
	groupCfg.Consumer.Group.Session.Timeout = s.cfg.SessionTimeout
	groupCfg.Consumer.Group.Heartbeat.Interval = s.cfg.SessionTimeout / 5
	group, err := sarama.NewConsumerGroup(s.cfg.Kafka.BrokerList(), s.cfg.GroupID, groupCfg)
	if err != nil {
		return fmt.Errorf("sequencer: join group %s: %w", s.cfg.GroupID, err)
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			s.log.Warn("consumer group error", "err", err)
		}
	}()

	backoff := time.Second
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.cancelSession = cancel
		s.mu.Unlock()
		err := group.Consume(sctx, []string{t.Raw}, handler{s})
		cancel()
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, sarama.ErrUnstableOffsetCommit) {
				// A dead instance left a transaction open: its offsets
				// stay unreadable until the broker aborts it at the
				// transaction timeout. Fencing aborts it now.
				s.fenceAll(int(n))
				continue
			}
			s.log.Warn("consumer group session failed; rejoining", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
		}
	}
	s.log.Info("sequencer stopped")
	return nil
}

// fenceAll initialises the transactional producer of every raw partition
// and closes it, which aborts whatever transaction a previous owner left
// open. A live instance that owned one of them is fenced too: its next
// commit fails and it rejoins, claiming its partitions again from committed
// state (nothing is lost, one session restart). Called only when the group
// cannot start because of such an open transaction, i.e. after a crash.
func (s *Sequencer) fenceAll(partitions int) {
	start := time.Now()
	for p := range partitions {
		txnID := s.transactionalID(int32(p))
		producer, err := sarama.NewSyncProducer(s.cfg.Kafka.BrokerList(), s.cfg.Kafka.TransactionalProducerConfig(txnID))
		if err != nil {
			s.log.Warn("fencing a transactional id", "id", txnID, "err", err)
			continue
		}
		producer.Close()
	}
	s.log.Warn("offsets blocked by an open transaction of a dead instance; fenced every partition's transactional id",
		"partitions", partitions, "took", time.Since(start).Round(time.Millisecond))
}

func (s *Sequencer) transactionalID(p int32) string {
	return fmt.Sprintf("%s-%s-%d", s.cfg.TransactionalIDPrefix, s.cfg.Topics.Raw, p)
}

// restartSession ends the current group session so that every partition is
// claimed again from its committed offset and state: the way back from a
// failed transaction, whose effects exist only in memory.
func (s *Sequencer) restartSession(partition int32, err error) {
	s.metrics.failures.Inc()
	s.log.Error("partition failed; restarting the group session", "partition", partition, "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelSession != nil {
		s.cancelSession()
	}
}

type handler struct{ s *Sequencer }

func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.inSession.Store(true)
	h.s.log.Info("group session started", "generation", sess.GenerationID(), "claims", sess.Claims())
	return nil
}

func (h handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.s.inSession.Store(false)
	return nil
}

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	p := claim.Partition()
	s.metrics.partitions.Inc()
	defer s.metrics.partitions.Dec()
	w, err := s.startWorker(sess, p)
	if err != nil {
		s.restartSession(p, err)
		return err
	}
	defer w.close()
	if err := w.run(sess, claim); err != nil {
		s.restartSession(p, err)
		return err
	}
	return nil
}
