package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/backoff"
)

// GroupConfig configures a Group: one consumer group stage.
type GroupConfig struct {
	Kafka Config
	// GroupID and Topic are the consumer group and the topic it consumes. Required.
	GroupID string
	Topic   string
	// SessionTimeout of the group: how soon a dead member's partitions
	// move. Zero means 10s (the broker's minimum is 6s).
	SessionTimeout time.Duration
	// MaxBatch caps the records of one batch. Zero means 1000.
	MaxBatch int
	// Linger is how long a batch waits for more records once it has one.
	// Zero means it takes only what has already arrived.
	Linger time.Duration
	// Idle, when set, hands a partition that got no record for this long an
	// empty batch (time-driven work: expiring holds).
	Idle time.Duration
	// CommitInterval, when set, makes the group mark each batch's end once
	// Process returned and commit the marked offsets this often and when a
	// session ends (at-least-once stages). Zero means the stage commits its
	// offsets itself, inside its transactions.
	CommitInterval time.Duration
	// FlushOnEnd hands a partition the records in hand when its session
	// ends, instead of leaving them to the next owner (for a stage that
	// can still write them, within its own deadline).
	FlushOnEnd bool
	// Lag, when set, gets each partition's records behind the high-water
	// mark after each batch (label "partition"); on a transactional topic
	// a caught-up partition shows 1, its last commit marker.
	Lag *prometheus.GaugeVec
	// Pending, when set, counts the records taken from the partitions and
	// not yet processed (in a batch being gathered or in Process).
	Pending prometheus.Gauge
	// Commits, when set, counts the offset commits of CommitInterval.
	Commits prometheus.Counter
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c *GroupConfig) setDefaults() {
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stage is what a consumer group stage does with the partitions it is
// given. A session is one generation of the group: Setup, then Open for
// every claimed partition (concurrently), batches, Close, and Cleanup once
// every partition has closed.
type Stage interface {
	// BeforeSession runs before each attempt to join a session, before the
	// group reads its committed offsets (a transactional stage initialises
	// its producer here, which aborts a transaction its own previous
	// incarnation left open: the offsets would stay unreadable until then).
	BeforeSession(ctx context.Context) error
	// Setup runs once a session has its claims, before any partition opens.
	Setup(s *Session) error
	// Open prepares a claimed partition (restores its state).
	Open(s *Session, partition int32) (Partition, error)
	// Cleanup runs after every partition of the session has closed.
	Cleanup(s *Session)
}

// Partition processes the batches of one claimed partition, one at a time,
// in offset order, on one goroutine: the partition's single writer for the
// length of a session.
type Partition interface {
	// Process handles one batch. An error ends the session: every
	// partition is claimed again from its committed offset.
	Process(b Batch) error
	// Close releases the partition (revoked, or the session ends).
	Close()
}

// Batch is what a partition gets at once.
type Batch struct {
	Records []*sarama.ConsumerMessage // in offset order; empty for an idle tick
	// HighWaterMark is the partition's high-water mark as last fetched (0:
	// no fetch has answered yet).
	HighWaterMark int64
	// Next is the offset after the last record handed over so far (the
	// claim's initial offset before the first record); never negative.
	Next int64
}

// CaughtUp reports whether every record the broker had at the last fetch
// has been handed over.
func (b Batch) CaughtUp() bool { return b.HighWaterMark > 0 && b.Next >= b.HighWaterMark }

// Session is one generation of the group, as its stage sees it.
type Session struct {
	sess  sarama.ConsumerGroupSession
	group string
	end   func(error)
}

// Context ends with the session.
func (s *Session) Context() context.Context { return s.sess.Context() }

// Generation is the group generation of the session.
func (s *Session) Generation() int32 { return s.sess.GenerationID() }

// Claims are the partitions of the session, by topic.
func (s *Session) Claims() map[string][]int32 { return s.sess.Claims() }

// GroupMetadata identifies the session to a transaction's offset commit
// (KIP-447): the broker refuses it from a member of an older generation.
func (s *Session) GroupMetadata() *sarama.ConsumerGroupMetadata {
	return sarama.NewConsumerGroupMetadataFromSession(s.sess, s.group, nil)
}

// End ends the session because of err: every partition is claimed again
// from its committed offset and state.
func (s *Session) End(err error) { s.end(err) }

// Group runs a Stage over a consumer group until its context ends,
// rejoining after failed sessions.
type Group struct {
	cfg   GroupConfig
	stage Stage
	log   *slog.Logger

	inSession atomic.Bool
	opening   atomic.Int32

	mu     sync.Mutex
	cancel context.CancelFunc // ends the current session
}

// NewGroup checks cfg; Run connects.
func NewGroup(cfg GroupConfig, stage Stage) (*Group, error) {
	cfg.setDefaults()
	switch {
	case cfg.GroupID == "" || cfg.Topic == "":
		return nil, errors.New("kafkawire: a group needs a group id and a topic")
	case cfg.MaxBatch < 1 || cfg.Linger < 0 || cfg.Idle < 0 || cfg.CommitInterval < 0:
		return nil, errors.New("kafkawire: group batch and interval settings must not be negative")
	case cfg.SessionTimeout < 6*time.Second:
		return nil, errors.New("kafkawire: session timeout below the broker's 6s minimum")
	}
	return &Group{cfg: cfg, stage: stage, log: cfg.Logger}, nil
}

// Ready fails until the group is in a session with every claimed
// partition open.
func (g *Group) Ready() error {
	if !g.inSession.Load() {
		return errors.New("not in a consumer group session")
	}
	if n := g.opening.Load(); n > 0 {
		return fmt.Errorf("opening %d partitions", n)
	}
	return nil
}

// Run consumes until ctx ends. Brokers that do not answer (a broker
// restarting as the service starts) and a failed session (a broker away, a
// stage error) are retried after a backoff; Run returns nil when ctx ends.
func (g *Group) Run(ctx context.Context) error {
	client, group, ok := g.connect(ctx)
	if !ok {
		return nil
	}
	defer client.Close()
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			g.log.Warn("consumer group error", "err", err)
		}
	}()
	// At most a second between attempts: through a broker restart every
	// session fails, and with the backoff grown to 5 s the fanout rejoined
	// 4 s after the broker was back (make chaos).
	retry := backoff.New(200*time.Millisecond, time.Second)
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		g.mu.Lock()
		g.cancel = cancel
		g.mu.Unlock()
		err := g.stage.BeforeSession(sctx)
		if err == nil {
			err = group.Consume(sctx, []string{g.cfg.Topic}, handler{g, client})
		}
		cancel()
		if err == nil || ctx.Err() != nil {
			retry.Reset()
			continue
		}
		g.log.Warn("consumer group session failed; rejoining", "err", err, "backoff", retry.Next())
		retry.Wait(ctx)
	}
	return nil
}

// connect opens the group's client, retrying until the brokers answer;
// false when ctx ended first.
func (g *Group) connect(ctx context.Context) (sarama.Client, sarama.ConsumerGroup, bool) {
	gcfg := g.cfg.Kafka.ConsumerGroupConfig()
	gcfg.Consumer.Group.Session.Timeout = g.cfg.SessionTimeout
	gcfg.Consumer.Group.Heartbeat.Interval = g.cfg.SessionTimeout / 5
	retry := backoff.New(200*time.Millisecond, 5*time.Second)
	for {
		client, err := sarama.NewClient(g.cfg.Kafka.BrokerList(), gcfg)
		if err == nil {
			group, gerr := sarama.NewConsumerGroupFromClient(g.cfg.GroupID, client)
			if gerr == nil {
				return client, group, true
			}
			client.Close()
			err = gerr
		}
		g.log.Warn("cannot join the consumer group yet; retrying", "group", g.cfg.GroupID, "err", err, "backoff", retry.Next())
		if !retry.Wait(ctx) {
			return nil, nil, false
		}
	}
}

// endSession ends the current session (a partition failed).
func (g *Group) endSession(p int32, err error) {
	g.log.Error("partition failed; restarting the group session", "partition", p, "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cancel != nil {
		g.cancel()
	}
}

type handler struct {
	g      *Group
	client sarama.Client
}

func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	g := h.g
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	g.opening.Store(int32(n))
	if err := g.stage.Setup(g.session(sess)); err != nil {
		g.opening.Store(0)
		return err
	}
	g.inSession.Store(true)
	g.log.Info("group session started", "group", g.cfg.GroupID, "generation", sess.GenerationID(), "claims", sess.Claims())
	if g.cfg.CommitInterval > 0 {
		go g.commitEvery(sess)
	}
	return nil
}

func (h handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	g := h.g
	g.inSession.Store(false)
	g.opening.Store(0)
	if g.cfg.CommitInterval > 0 {
		g.commit(sess) // the batches processed since the last tick
	}
	g.stage.Cleanup(g.session(sess))
	return nil
}

func (g *Group) session(sess sarama.ConsumerGroupSession) *Session {
	return &Session{sess: sess, group: g.cfg.GroupID, end: func(err error) { g.endSession(-1, err) }}
}

// commitEvery commits the marked offsets every CommitInterval. Apart from
// the partitions, so that they never wait for a commit queued behind a
// fetch's long poll on the coordinator's connection.
func (g *Group) commitEvery(sess sarama.ConsumerGroupSession) {
	t := time.NewTicker(g.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-sess.Context().Done():
			return
		case <-t.C:
			g.commit(sess)
		}
	}
}

// commit commits the marked offsets; its errors go to the group's Errors()
// (a failed commit only means a replay).
func (g *Group) commit(sess sarama.ConsumerGroupSession) {
	sess.Commit()
	if g.cfg.Commits != nil {
		g.cfg.Commits.Inc()
	}
}

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	g := h.g
	p := claim.Partition()
	s := g.session(sess)
	part, err := g.stage.Open(s, p)
	g.opening.Add(-1)
	if err != nil {
		if sess.Context().Err() == nil {
			g.endSession(p, err)
		}
		return err
	}
	defer part.Close()
	var lag prometheus.Gauge
	if g.cfg.Lag != nil {
		label := strconv.Itoa(int(p))
		lag = g.cfg.Lag.WithLabelValues(label)
		defer g.cfg.Lag.DeleteLabelValues(label)
	}
	var idle *time.Ticker
	var idleC <-chan time.Time
	if g.cfg.Idle > 0 {
		idle = time.NewTicker(g.cfg.Idle)
		defer idle.Stop()
		idleC = idle.C
	}
	next := claim.InitialOffset()
	if next < 0 {
		// Nothing committed yet: where the claim starts (OffsetOldest),
		// as an offset an idle tick's unit can commit.
		if next, err = h.client.GetOffset(claim.Topic(), p, next); err != nil {
			err = fmt.Errorf("partition %d: initial offset: %w", p, err)
			if sess.Context().Err() == nil {
				g.endSession(p, err)
			}
			return err
		}
	}
	pending := g.cfg.Pending
	if pending == nil {
		pending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unused"})
	}
	for {
		recs, open := collect(sess.Context(), claim.Messages(), idleC, g.cfg.MaxBatch, g.cfg.Linger, pending)
		if len(recs) > 0 {
			next = recs[len(recs)-1].Offset + 1
		}
		if !open && (!g.cfg.FlushOnEnd || len(recs) == 0) {
			pending.Sub(float64(len(recs)))
			return nil
		}
		b := Batch{Records: recs, HighWaterMark: claim.HighWaterMarkOffset(), Next: next}
		err := part.Process(b)
		pending.Sub(float64(len(recs)))
		if err != nil {
			if sess.Context().Err() == nil {
				g.endSession(p, err)
			}
			return err
		}
		if len(recs) > 0 && g.cfg.CommitInterval > 0 {
			sess.MarkOffset(claim.Topic(), p, next, "")
		}
		if !open {
			return nil
		}
		if lag != nil && b.HighWaterMark > 0 {
			lag.Set(float64(max(b.HighWaterMark-next, 0)))
		}
		if idle != nil && len(recs) > 0 {
			idle.Reset(g.cfg.Idle)
		}
	}
}

// collect waits for a first record (or an idle tick), then takes what has
// arrived, up to max, waiting up to linger for more; pending counts each
// record as it is taken. open is false once the session ends.
func collect(ctx context.Context, in <-chan *sarama.ConsumerMessage, idle <-chan time.Time, max int, linger time.Duration, pending prometheus.Gauge) (recs []*sarama.ConsumerMessage, open bool) {
	take := func(m *sarama.ConsumerMessage) {
		recs = append(recs, m)
		pending.Inc()
	}
	select {
	case <-ctx.Done():
		return nil, false
	case m, ok := <-in:
		if !ok {
			return nil, false
		}
		take(m)
	case <-idle:
		return nil, true
	}
	var deadline <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(recs) < max {
		select {
		case m, ok := <-in:
			if !ok {
				return recs, false
			}
			take(m)
			continue
		default:
		}
		if deadline == nil {
			return recs, true
		}
		select {
		case m, ok := <-in:
			if !ok {
				return recs, false
			}
			take(m)
		case <-deadline:
			return recs, true
		case <-ctx.Done():
			return recs, false
		}
	}
	return recs, true
}
