package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/httpserve"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/presence"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Config configures a Gateway.
type Config struct {
	Kafka  kafkawire.Config
	Topics kafkawire.Topics // zero fields get kafkawire's defaults
	// WriteGeneration pins the generation of the raw topic sends are
	// produced to (generation.Topics; docs/architecture.md,
	// Repartitioning). Zero means the one Control says ingest writes to
	// (refusing sends while its view is stale: Ingest.ControlStale), or 1
	// without Control.
	WriteGeneration uint32
	// Control is the service's view of the control topic: a new
	// connection settles against every generation whose fanouts route
	// (imported, not retired), and sends go to the generation it says
	// ingest writes to (unless WriteGeneration pins one). Nil means
	// generation 1 only, with the partition count the fanout's notices say.
	Control *control.Follower
	// Layout creates this gateway's topic (its partition count and retention).
	Layout kafkawire.Layout
	// GatewayID names this gateway and its topic. Required.
	GatewayID string
	// TokenKey verifies the devices' tokens (auth.Signer). Required.
	TokenKey []byte
	// History fills gaps and catches devices up. Required.
	History History
	// Ingest configures the write path; its Origin becomes the gateway id.
	Ingest ingest.Config
	// MaxFrameBytes bounds a client frame. Zero means 64 KiB.
	MaxFrameBytes int
	// SendsPerSecond and SendBurst bound a connection's sends. Zero means 50 and 100.
	SendsPerSecond float64
	SendBurst      int
	// OutboundQueue is the frames waiting for a slow client before it is
	// disconnected (slow_consumer). Zero means 1024.
	OutboundQueue int
	// GapWait is how long entries wait behind a hole for the live stream to
	// fill it before it is filled from history. Zero means 300ms.
	GapWait time.Duration
	// PingInterval of WebSocket pings; a client silent for twice as long is
	// dropped. Zero means 20s.
	PingInterval time.Duration
	// SettleDelay: entries the fanout routed between the device's hello
	// and its seeing the device's presence did not come live. The fanout
	// says, per sequenced partition, from which offset it routes to the
	// device (RoutingStarted); once history has stored the partition up
	// to there, the gateway reads it once more for the conversations on
	// it that have had no live entry. For partitions no such notice came
	// for this long after hello (and again 4 times later), it reads every
	// conversation of the user that has had no live entry. Zero means 3s.
	SettleDelay time.Duration
	// StallAfter: a device that stays behind a conversation's head (the
	// sequencers' heartbeats on the heads topic) this long is read up to
	// it from history: its delivery path stopped without an error
	// (stalls.go). Zero means 10s; negative means never.
	StallAfter time.Duration
	// OverloadDelay: while the pipeline is past capacity (live entries are
	// written to the clients this long after ingest received them, for a
	// second, and more is sent than comes back), the rate of new sends is
	// throttled and the others are refused with unavailable and a
	// retry_after_ms hint, so that accepted sends are still delivered
	// quickly and the backlog cannot grow without bound (admission.go).
	// Zero means 1s (at 500ms a broker just restarted, keeping up at
	// 0.5-0.8 s, read as overload: 5 of 9 broker restarts in chaos then
	// took 22-85 s, with up to 88,034 refusals); negative means never.
	OverloadDelay time.Duration
	// MaxConnections bounds the connections open at once (hellos in
	// progress included). Zero means what the open-file limit allows with
	// FDReserve descriptors kept back; negative means none. Past it, and
	// past MemoryLimit, a new connection gets a fatal unavailable with a
	// retry hint before welcome (close 1013), and the ones open go on.
	MaxConnections int
	// FDReserve: descriptors a derived MaxConnections leaves for the
	// gateway's own connections. Zero means DefaultFDReserve.
	FDReserve int
	// MaxConnectionsPerUser bounds one user's connections here; past it
	// hello is refused with too_many_connections. Zero means
	// DefaultMaxConnectionsPerUser; negative means none.
	MaxConnectionsPerUser int
	// MemoryLimit: bytes the process may hold from the OS before new
	// connections are refused. Zero means 90% of GOMEMLIMIT when it is
	// set, else none; negative means none.
	MemoryLimit int64
	// Demo serves a chat page at / and issues tokens to anyone at
	// /demo/token: for development only.
	Demo bool
	// Logger; nil means slog.Default(). Registerer; nil means no metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	c.Topics = c.Topics.WithDefaults()
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.SendsPerSecond == 0 {
		c.SendsPerSecond = 50
	}
	if c.SendBurst == 0 {
		c.SendBurst = 100
	}
	if c.OutboundQueue == 0 {
		c.OutboundQueue = 1024
	}
	if c.GapWait == 0 {
		c.GapWait = 300 * time.Millisecond
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.SettleDelay == 0 {
		c.SettleDelay = 3 * time.Second
	}
	if c.StallAfter == 0 {
		c.StallAfter = 10 * time.Second
	}
	if c.OverloadDelay == 0 {
		c.OverloadDelay = time.Second
	}
	if c.FDReserve == 0 {
		c.FDReserve = DefaultFDReserve
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Ingest.Kafka = c.Kafka
	if c.WriteGeneration > 0 || c.Control == nil {
		c.Ingest.Topic = generation.Topics(c.Topics, max(c.WriteGeneration, generation.First)).Raw
	} else {
		c.Ingest.Topic, c.Ingest.Control = c.Topics.Raw, c.Control
	}
	c.Ingest.Origin = c.GatewayID
	c.Ingest.Logger = c.Logger
	c.Ingest.Registerer = c.Registerer
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case !gatewayIDPattern.MatchString(c.GatewayID):
		return errors.New("gateway: a gateway id (letters, digits, . _ -) is required")
	case len(c.TokenKey) < auth.MinKeyBytes:
		return fmt.Errorf("gateway: the token key needs at least %d bytes", auth.MinKeyBytes)
	case c.History == nil:
		return errors.New("gateway: a history reader is required")
	case c.MaxFrameBytes < 1024 || c.OutboundQueue < 1 || c.SendsPerSecond <= 0 || c.SendBurst < 1:
		return errors.New("gateway: limits must be positive (frames at least 1 KiB)")
	}
	return nil
}

// gatewayIDPattern: a gateway id names a Kafka topic too.
var gatewayIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

type deviceKey struct{ user, device string }

// Gateway serves the WebSocket client protocol: it authenticates devices,
// hands their sends to ingest, announces their presence, consumes its own
// topic of deliveries and delivers them through per-connection reorder
// buffers, filling gaps from history.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	signer   *auth.Signer
	decoder  *FrameDecoder
	ingest   *ingest.Ingester
	presence presenceWriter
	metrics  *metrics
	upgrader websocket.Upgrader
	batches  sync.Pool // batchConn buffers
	admit    *admission
	limits   *connLimits
	progress *progressReader
	shared   *sharedReads
	heads    *streamHeads

	started    chan struct{} // closed once the gateway consumes its topic
	topicsWait kafkawire.TopicsWait

	mu      sync.Mutex
	conns   map[deviceKey]map[*conn]struct{}
	closing bool // set by closeAll: no new connection is registered
	// shutdown is closed by closeAll: hellos still waiting for history
	// give up.
	shutdown chan struct{}

	// handlers counts the WebSocket connections still served, each until its
	// connection's last presence announcement is written: the presence
	// writer may only close after them.
	handlers sync.WaitGroup
}

// New checks the configuration and prepares the gateway; Run starts it.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner(cfg.TokenKey)
	if err != nil {
		return nil, err
	}
	decoder, err := NewFrameDecoder()
	if err != nil {
		return nil, err
	}
	ing, err := ingest.New(cfg.Ingest)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger.With("gateway", cfg.GatewayID), signer: signer, decoder: decoder,
		ingest: ing, presence: cfg.Kafka.NewProducer(cfg.Topics.Presence), metrics: newMetrics(cfg.Registerer),
		conns: map[deviceKey]map[*conn]struct{}{}, started: make(chan struct{}), shutdown: make(chan struct{}), admit: newAdmission(cfg.OverloadDelay, time.Now()),
		limits:   newConnLimits(cfg.MaxConnections, cfg.FDReserve, cfg.MaxConnectionsPerUser, cfg.MemoryLimit),
		progress: &progressReader{history: cfg.History, legacy: cfg.Topics.Sequenced}, shared: &sharedReads{history: cfg.History, reads: map[sharedKey]*sharedRead{}},
		heads: newStreamHeads()}
	g.metrics.pipelineDelay = func() float64 { return g.admit.delay(time.Now()).Seconds() }
	g.metrics.admissionRate = func() float64 { return g.admit.admitted(time.Now()) }
	g.metrics.registerLimits(cfg.Registerer, g.limits)
	g.log.Info("connection limits", "connections", g.limits.maxConns, "per_user", g.limits.perUser, "memory_bytes", g.limits.maxMemory)
	// A connection holds a 1 KiB read buffer; write buffers come from a
	// pool only while a frame is written (issue 16: memory per idle
	// connection).
	g.upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(*http.Request) bool { return true }} // tokens, not cookies, authenticate
	return g, nil
}

// Ready fails until the gateway consumes its topic.
func (g *Gateway) Ready(context.Context) error {
	select {
	case <-g.started:
		return nil
	default:
		if err := g.topicsWait.Err(); err != nil {
			return err
		}
		return errors.New("not consuming its topic yet")
	}
}

// Started is closed once the gateway consumes its topic and serves.
func (g *Gateway) Started() <-chan struct{} { return g.started }

// Handler serves /ws (the protocol), and the demo page when configured.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", g.serveWS)
	if g.cfg.Demo {
		mux.HandleFunc("GET /{$}", serveDemoPage)
		mux.HandleFunc("GET /demo/token", g.serveDemoToken)
		mux.Handle("GET /demo/", http.FileServerFS(demoFiles))
	}
	return mux
}

// Run creates and consumes the gateway's topic, then serves connections on
// ln until ctx ends; then it closes every connection (announcing the
// devices offline) and flushes.
func (g *Gateway) Run(ctx context.Context, ln net.Listener) error {
	defer g.ingest.Close()
	defer g.presence.Close()
	topic := g.cfg.Topics.Gateway(g.cfg.GatewayID)
	start := time.Now()
	var (
		consumer sarama.Consumer
		parts    []int32
	)
	err := g.topicsWait.Await(ctx, g.log, g.cfg.Kafka, func(admin sarama.ClusterAdmin) (err error) {
		if err = kafkawire.EnsureTopics(admin, kafkawire.GatewaySpec(g.cfg.Topics, g.cfg.Layout, g.cfg.GatewayID)); err != nil {
			return err
		}
		if consumer, err = sarama.NewConsumer(g.cfg.Kafka.BrokerList(), g.cfg.Kafka.Sarama()); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		if parts, err = consumer.Partitions(topic); err != nil {
			consumer.Close()
			return fmt.Errorf("topic %s: %w", topic, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if ctx.Err() != nil {
		return nil
	}
	defer consumer.Close()
	eg, ctx := errgroup.WithContext(ctx)
	// From the newest offset, taken before any device can connect: nothing
	// routed to a connected device is missed, and what was routed before
	// it connected comes from history.
	pcs, err := kafkawire.ConsumePartitions(ctx, consumer, topic, parts, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer kafkawire.ClosePartitions(pcs)
	for _, pc := range pcs {
		eg.Go(func() error { return g.consume(ctx, pc) })
	}
	close(g.started)
	g.log.Info("gateway consuming", "topic", topic, "partitions", len(parts), "took", time.Since(start).Round(time.Millisecond))
	eg.Go(func() error { g.savePositionsEvery(ctx, time.Second); return nil })
	if g.cfg.StallAfter > 0 {
		eg.Go(func() error { return g.followHeads(ctx, consumer) })
		eg.Go(func() error { g.sweepStalls(ctx); return nil })
	}
	eg.Go(func() error { return httpserve.Serve(ctx, ln, g.Handler(), g.log) })
	err = eg.Wait()
	g.closeAll()
	return err
}

func (g *Gateway) consume(ctx context.Context, pc sarama.PartitionConsumer) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			g.log.Warn("consuming deliveries", "err", err)
		case m := <-pc.Messages():
			d := &imv1.GatewayDelivery{}
			err := imv1.Unmarshal(m.Value, d)
			if err == nil && d.RoutingStarted != nil {
				g.routingStarted(d.RoutingStarted)
				continue
			}
			if err != nil || d.Record == nil {
				g.log.Warn("skipping undecodable delivery", "offset", m.Offset, "err", err)
				continue
			}
			g.route(d, m.Timestamp)
		}
	}
}

// route hands a delivery to the recipients' connections on this gateway;
// an entry's frame is encoded once for all of them.
func (g *Gateway) route(d *imv1.GatewayDelivery, routedAt time.Time) {
	var entry []Entry
	if d.Record.Seq > 0 {
		f := EntryFrame(d.Record)
		entry = []Entry{{Seq: d.Record.Seq, Epoch: d.Record.Epoch, Payload: encode(f), RoutedAt: routedAt,
			ReceivedAt: time.UnixMilli(d.Record.ReceivedAtMs), ClientMsgID: d.Record.ClientMsgId,
			Sender: deviceKey{d.Record.SenderUserId, d.Record.SenderDeviceId}, Membership: f.Event}}
	}
	var cs []*conn
	g.mu.Lock()
	for _, r := range d.Recipients {
		for c := range g.conns[deviceKey{r.UserId, r.DeviceId}] {
			cs = append(cs, c)
		}
	}
	g.mu.Unlock()
	for _, c := range cs {
		if entry == nil {
			c.deliverNotice(d.Record)
		} else {
			c.offer(d.Record.ConversationId, entry)
		}
	}
}

// routedTopics is, per sequenced topic of a generation whose fanouts
// route (imported, not retired: a newer one still importing sends no
// notices yet, and its later ones are applied as they come), its
// partition count; nil without a view of the generations.
func (g *Gateway) routedTopics() map[string]int32 {
	if g.cfg.Control == nil {
		return nil
	}
	gens, _ := g.cfg.Control.Current()
	if gens == nil {
		return nil
	}
	out := map[string]int32{}
	for _, gen := range gens.GetGenerations() {
		if gen.Phase == generation.Imported {
			out[generation.Topics(g.cfg.Topics, gen.Id).Sequenced] = gen.Partitions
		}
	}
	return out
}

// routingStarted hands the fanout's notice to the connection it names.
func (g *Gateway) routingStarted(rs *imv1.RoutingStarted) {
	g.mu.Lock()
	var target *conn
	for c := range g.conns[deviceKey{rs.UserId, rs.DeviceId}] {
		if c.epoch == rs.Epoch {
			target = c
		}
	}
	g.mu.Unlock()
	if target != nil {
		target.routingStarted(rs)
	}
}

// savePositionsEvery saves every connection's acknowledged positions each
// interval until ctx ends (connections save their last ones when they close).
func (g *Gateway) savePositionsEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range g.connections() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c.savePositions(sctx)
			cancel()
		}
	}
}

// connections are the connections registered now.
func (g *Gateway) connections() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	var all []*conn
	for _, cs := range g.conns {
		for c := range cs {
			all = append(all, c)
		}
	}
	return all
}

// register adds c to the devices served here; false once the gateway is
// shutting down.
func (g *Gateway) register(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	k := deviceKey{c.user, c.device}
	if g.conns[k] == nil {
		g.conns[k] = map[*conn]struct{}{}
	}
	g.conns[k][c] = struct{}{}
	g.metrics.connections.Inc()
	return true
}

func (g *Gateway) unregister(c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := deviceKey{c.user, c.device}
	if _, ok := g.conns[k][c]; !ok {
		return
	}
	delete(g.conns[k], c)
	if len(g.conns[k]) == 0 {
		delete(g.conns, k)
	}
	g.metrics.connections.Dec()
}

// closeAll closes every connection and waits until every handler has
// finished, its offline announcement included (so the presence writer can
// close after it: a write racing the close hung the writer's Close).
func (g *Gateway) closeAll() {
	defer g.handlers.Wait()
	g.mu.Lock()
	if !g.closing {
		close(g.shutdown)
	}
	g.closing = true
	g.mu.Unlock()
	for _, c := range g.connections() {
		c.mu.Lock()
		placing := c.placing
		c.mu.Unlock()
		if placing { // welcomed, still waiting to be caught up: say so
			c.shuttingDown()
		} else {
			c.close(websocket.CloseGoingAway, "gateway shutting down")
		}
		<-c.done
	}
}

// presenceWriter writes presence records: a kafkawire.Producer.
type presenceWriter interface {
	Write(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// announce writes the device's presence: online with the connection's epoch,
// or offline for that same epoch.
func (g *Gateway) announce(ctx context.Context, c *conn, online bool) error {
	b, err := imv1.Marshal(&imv1.Presence{Version: imv1.Version, UserId: c.user, DeviceId: c.device,
		GatewayId: g.cfg.GatewayID, Online: online, Epoch: c.epoch, AtMs: time.Now().UnixMilli()})
	if err == nil {
		err = g.presence.Write(ctx, kafka.Message{Key: []byte(presence.Key(c.user, c.device)), Value: b})
	}
	if err != nil {
		g.log.Warn("announcing presence", "user", c.user, "device", c.device, "online", online, "err", err)
	}
	return err
}
