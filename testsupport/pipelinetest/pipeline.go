package pipelinetest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// Config says what differs between the tests that start a pipeline.
type Config struct {
	// Kafka is the brokers to run on; zero means the test stack's
	// (stacktest.Kafka).
	Kafka kafkawire.Config
	// Replication is the topics' replication factor; zero means 1.
	Replication int16
	// Partitions of the core topics; zero means 4. Gateway topics have 2.
	Partitions int32
	// Prefix starts the names of the topics and consumer groups (made
	// unique per test by stacktest.Name); empty means "pl".
	Prefix string
	// ServiceToken guards the history read API; TokenKey signs the devices'
	// tokens (both required).
	ServiceToken string
	TokenKey     []byte
	// Sequencer adjusts the sequencer's configuration.
	Sequencer func(*sequencer.Config)
	// DefaultTopics: the topics' default names rather than the test's own,
	// on a private cluster, for service binaries that take no topic names
	// (the gateway).
	DefaultTopics bool
	// HistoryHost is the address the history read API listens on; empty
	// means 127.0.0.1.
	HistoryHost string
}

// Pipeline is a running pipeline. Its configurations may be changed
// between a Stop… and the Start… after it.
type Pipeline struct {
	T      testing.TB
	Kafka  kafkawire.Config
	Topics kafkawire.Topics
	// HistoryURL is the read API's base URL.
	HistoryURL string
	Signer     *auth.Signer
	Log        *slog.Logger // printed if the test fails
	// ClickHouse and Database are the history store's.
	ClickHouse driver.Conn
	Database   string
	// HistoryReads counts the read API's requests (every method but PUT,
	// which stores positions): each one queries ClickHouse.
	HistoryReads atomic.Int64

	Sequencer sequencer.Config
	Fanout    fanout.Config
	Sink      history.Config
	// ControlTopic is the pipeline's control topic (not created: until a
	// test publishes a record there, the pipeline is generation 1 alone),
	// and Control the follower of it that history's progress and the
	// gateways use.
	ControlTopic string
	Control      *control.Follower

	cfg                                 Config
	stopSequencer, stopFanout, stopSink func()
	gateways                            map[string]*Gateway
}

// Gateway is one running gateway.
type Gateway struct {
	Addr string // host:port; its WebSocket endpoint is ws://Addr/ws
	Stop func()
}

// URL is the gateway's WebSocket URL.
func (g *Gateway) URL() string { return "ws://" + g.Addr + "/ws" }

// Start runs the sequencer, the fanout, the history sink and its read API
// on fresh topics and a fresh database; gateways are started with
// StartGateway.
func Start(t testing.TB, cfg Config) *Pipeline {
	t.Helper()
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "pl"
	}
	kcfg, admin := cfg.Kafka, sarama.ClusterAdmin(nil)
	if len(kcfg.Brokers) == 0 {
		kcfg, admin = stacktest.Kafka(t), stacktest.Admin(t)
	} else {
		var err error
		if admin, err = kcfg.NewAdmin(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close() })
	}
	prefix := stacktest.Name(t, cfg.Prefix)
	topics := kafkawire.PrefixedTopics(prefix)
	if cfg.DefaultTopics {
		topics = kafkawire.Topics{}.WithDefaults()
	}
	layout := kafkawire.Layout{Partitions: cfg.Partitions, ReplicationFactor: cfg.Replication}
	if err := kafkawire.EnsureTopics(admin, kafkawire.CoreSpecs(topics, layout)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, _ := admin.ListTopics()
		for name := range all {
			if strings.HasPrefix(name, prefix+".") {
				admin.DeleteTopic(name)
			}
		}
	})
	signer, err := auth.NewSigner(cfg.TokenKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{T: t, Kafka: kcfg, Topics: topics, Signer: signer, Log: stacktest.Logger(t), cfg: cfg,
		gateways: map[string]*Gateway{}}

	p.ControlTopic = prefix + ".control"
	p.Control = control.NewFollower(control.FollowerConfig{Kafka: kcfg, Topic: p.ControlTopic, Topics: topics,
		Poll: 100 * time.Millisecond, Logger: p.Log.With("service", "control")})
	p.Run("control follower", p.Control.Run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.Control.Wait(ctx); err != nil {
		t.Fatalf("the control topic's view: %v", err)
	}

	p.Sequencer = sequencer.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".sequencer", Logger: p.Log.With("service", "sequencer")}
	if cfg.Sequencer != nil {
		cfg.Sequencer(&p.Sequencer)
	}
	p.StartSequencer()
	p.Fanout = fanout.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".fanout", Logger: p.Log.With("service", "fanout")}
	p.StartFanout()

	p.ClickHouse, p.Database = stacktest.ClickHouse(t)
	store, err := history.NewStore(p.ClickHouse, p.Database)
	if err != nil {
		t.Fatal(err)
	}
	p.Sink = history.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".history", Store: store,
		BatchMaxWait: 20 * time.Millisecond, Logger: p.Log.With("service", "history")}
	p.StartSink()
	progress := history.NewProgress(kcfg, topics, prefix+".history", func() []*imv1.Generation {
		g, _ := p.Control.Current()
		return generation.Live(g)
	})
	t.Cleanup(func() { progress.Close() })
	api, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: cfg.ServiceToken, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			p.HistoryReads.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	if cfg.HistoryHost != "" {
		srv.Listener.Close()
		if srv.Listener, err = net.Listen("tcp", net.JoinHostPort(cfg.HistoryHost, "0")); err != nil {
			t.Fatal(err)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p.HistoryURL = srv.URL
	return p
}

// StartSequencer starts the sequencer (again, after StopSequencer) with
// p.Sequencer.
func (p *Pipeline) StartSequencer() {
	p.T.Helper()
	seq, err := sequencer.New(p.Sequencer)
	if err != nil {
		p.T.Fatal(err)
	}
	p.stopSequencer = p.Run("sequencer", seq.Run)
}

// StopSequencer stops the sequencer and waits until it returned.
func (p *Pipeline) StopSequencer() { p.stopSequencer() }

// StartFanout starts the fanout (again, after StopFanout) with p.Fanout.
func (p *Pipeline) StartFanout() {
	p.T.Helper()
	fan, err := fanout.New(p.Fanout)
	if err != nil {
		p.T.Fatal(err)
	}
	p.stopFanout = p.Run("fanout", fan.Run)
}

// StopFanout stops the fanout and waits until it returned.
func (p *Pipeline) StopFanout() { p.stopFanout() }

// StartSink starts the history sink (again, after StopSink) with p.Sink.
func (p *Pipeline) StartSink() {
	p.T.Helper()
	sink, err := history.New(p.Sink)
	if err != nil {
		p.T.Fatal(err)
	}
	p.stopSink = p.Run("history sink", sink.Run)
}

// StopSink stops the history sink and waits until it returned.
func (p *Pipeline) StopSink() { p.stopSink() }

// Run starts a component until the test ends; stop ends it early (once)
// and reports the error it returned.
func (p *Pipeline) Run(name string, run func(context.Context) error) (stop func()) {
	return stacktest.Run(p.T, name, run)
}

// GatewayConfig is the configuration StartGateway starts gateway id with
// before its tune functions: the pipeline's topics and history, the
// components' defaults for everything else.
func (p *Pipeline) GatewayConfig(id string) gateway.Config {
	return gateway.Config{Kafka: p.Kafka, Topics: p.Topics,
		Layout:    kafkawire.Layout{Partitions: 2, ReplicationFactor: p.cfg.Replication},
		GatewayID: id, TokenKey: p.cfg.TokenKey,
		History: &gateway.HistoryClient{BaseURL: p.HistoryURL, Token: p.cfg.ServiceToken},
		Control: p.Control,
		Logger:  p.Log.With("service", "gateway", "gateway_id", id)}
}

// StartGateway runs gateway id and waits until it consumes its topic.
func (p *Pipeline) StartGateway(id string, tune ...func(*gateway.Config)) *Gateway {
	p.T.Helper()
	cfg := p.GatewayConfig(id)
	for _, f := range tune {
		f(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		p.T.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.T.Fatal(err)
	}
	stop := p.Run("gateway "+id, func(ctx context.Context) error { return g.Run(ctx, ln) })
	select {
	case <-g.Started():
	case <-time.After(time.Minute):
		p.T.Fatalf("gateway %s did not start within a minute", id)
	}
	gw := &Gateway{Addr: ln.Addr().String(), Stop: stop}
	p.gateways[id] = gw
	return gw
}

// Gateway is the gateway StartGateway started as id (nil: none).
func (p *Pipeline) Gateway(id string) *Gateway { return p.gateways[id] }

// Token is a valid device token of user/device for ttl.
func (p *Pipeline) Token(user, device string, ttl time.Duration) string {
	p.T.Helper()
	now := time.Now()
	tok, err := p.Signer.Issue(auth.Claims{UserID: user, DeviceID: device, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(ttl)})
	if err != nil {
		p.T.Fatal(err)
	}
	return tok
}
