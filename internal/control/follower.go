package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Kafka kafkawire.Config
	// Topic is the control topic; zero means generation.ControlTopic.
	Topic string
	// Topics are generation 1's names: without a control record the view
	// is generation 1 with the partition count of its raw topic, or of its
	// sequenced topic when Raw is empty (a fanout or history service names
	// only that one). All empty means kafkawire's default raw topic.
	Topics kafkawire.Topics
	// Poll is how often the follower checks that it has read the topic to
	// its end (what Age measures). Zero means 1s.
	Poll time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

// Follower follows the control topic with one partition consumer: the
// control record as of the topic's end, and how long ago it last reached
// that end. Safe for concurrent use.
type Follower struct {
	cfg FollowerConfig

	mu      sync.Mutex
	current *imv1.Generations // nil until the topic was first read to its end
	at      time.Time         // when the topic was last read to its end
	changed chan struct{}     // closed when current changes
	read    chan struct{}     // closed each time the topic is read to its end
}

// NewFollower makes a follower; Run follows.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Topic == "" {
		cfg.Topic = generation.ControlTopic
	}
	if cfg.Topics.Raw == "" && cfg.Topics.Sequenced != "" {
		cfg.Topics.Raw = cfg.Topics.Sequenced // co-partitioned: the same count
	}
	cfg.Topics = cfg.Topics.WithDefaults()
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Follower{cfg: cfg, changed: make(chan struct{}), read: make(chan struct{})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_control_view_age_seconds",
				Help: "Since this service last read the control topic to its end (ingest refuses sends past -control-stale); -1 before the first time."},
				func() float64 {
					if age, ok := f.Age(); ok {
						return age.Seconds()
					}
					return -1
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seqchat_control_write_generation",
				Help: "The generation whose raw topic ingest writes to, in this service's view of the control topic (0: none yet)."},
				func() float64 {
					g, _ := f.Current()
					return float64(generation.WriteTo(g).GetId())
				}),
		)
	}
	return f
}

// Current is the control record as of the last time the topic was read to
// its end (nil before the first), and a channel closed when it changes.
func (f *Follower) Current() (*imv1.Generations, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current, f.changed
}

// Age is how long ago the follower last read the topic to its end; false
// before the first time.
func (f *Follower) Age() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == nil {
		return 0, false
	}
	return time.Since(f.at), true
}

// Wait waits until the follower has read the topic to its end once, and
// returns the record.
func (f *Follower) Wait(ctx context.Context) (*imv1.Generations, error) {
	return f.Fresh(ctx, time.Duration(math.MaxInt64))
}

// Fresh returns the record once the follower has read the topic to its
// end within maxAge, waiting for that until ctx ends. After a broker
// outage the view is as old as the outage: what waits here is what could
// not have been written anyway, and goes on once the follower is back.
func (f *Follower) Fresh(ctx context.Context, maxAge time.Duration) (*imv1.Generations, error) {
	for {
		f.mu.Lock()
		g, at, read := f.current, f.at, f.read
		f.mu.Unlock()
		if g != nil && time.Since(at) <= maxAge {
			return g, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-read:
		}
	}
}

// Run follows the topic until ctx ends, reconnecting after errors (the
// view ages meanwhile).
func (f *Follower) Run(ctx context.Context) error {
	retry := backoff.New(200*time.Millisecond, time.Second) // ingest refuses sends while the view is stale
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.cfg.Logger.Warn("control topic: following failed; retrying", "topic", f.cfg.Topic, "err", err)
		if !retry.Wait(ctx) {
			return nil
		}
	}
}

// follow reads the topic from its start, then keeps reading; it sets the
// view each time it has read to the end.
func (f *Follower) follow(ctx context.Context) error {
	// Run retries a failed follow: metadata is tried twice, not the
	// services' 10 times (2.7 s with no broker), so that the view is fresh
	// again soon after a broker comes back (ingest's sends wait for it).
	sc := f.cfg.Kafka.Sarama()
	sc.Metadata.Retry.Max = 1
	client, err := sarama.NewClient(f.cfg.Kafka.BrokerList(), sc)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer client.Close()
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	// Until imctl creates the topic, the deployment has generation 1 only.
	for {
		_, err := client.Partitions(f.cfg.Topic)
		if err == nil {
			break
		}
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("partitions of %s: %w", f.cfg.Topic, err)
		}
		if err := f.reached(client, nil); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	next, err := client.GetOffset(f.cfg.Topic, 0, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("start of %s: %w", f.cfg.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	pc, err := kafkawire.ConsumePartition(ctx, consumer, f.cfg.Topic, 0, next)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.cfg.Topic, err)
	}
	defer pc.Close()
	var last []byte
	// The end now: an empty topic is read to its end before the first tick.
	end, err := kafkawire.NewestOffset(ctx, client, f.cfg.Topic, 0)
	if err != nil {
		return fmt.Errorf("end of %s: %w", f.cfg.Topic, err)
	}
	for {
		if next >= end {
			if err := f.reached(client, last); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			return fmt.Errorf("read %s: %w", f.cfg.Topic, err)
		case m := <-pc.Messages():
			if string(m.Key) == generation.ControlKey {
				last = m.Value
			}
			next, end = m.Offset+1, pc.HighWaterMarkOffset()
		case <-tick.C:
			if end, err = kafkawire.NewestOffset(ctx, client, f.cfg.Topic, 0); err != nil {
				return fmt.Errorf("end of %s: %w", f.cfg.Topic, err)
			}
		}
	}
}

// reached records that the topic was read to its end with value the last
// control record (nil: none).
func (f *Follower) reached(client sarama.Client, value []byte) error {
	g, _, err := decode(client, f.cfg.Topic, f.cfg.Topics.Raw, value)
	if err != nil {
		// A record the rules refuse: keep the last good view and let it
		// age (ingest refuses sends), rather than act on it.
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = time.Now()
	close(f.read)
	f.read = make(chan struct{})
	if f.current == nil || !proto.Equal(f.current, g) {
		if f.current != nil {
			f.cfg.Logger.Info("control topic: generations changed", "generations", describe(g))
		}
		f.current = g
		close(f.changed)
		f.changed = make(chan struct{})
	}
	return nil
}

// describe is a record for a log line: "1:4:imported 2:8:prepared".
func describe(g *imv1.Generations) string {
	s := ""
	for _, gen := range g.GetGenerations() {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%d:%d:%v", gen.Id, gen.Partitions, gen.Phase)
	}
	return s
}
