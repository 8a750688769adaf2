package loadgen_test

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const (
	partitions   = 4
	serviceToken = "loadgen-service-token-0123456789"
)

var tokenKey = []byte(strings.Repeat("loadgen-", 5))

// startPipeline runs the whole system in this process (sequencer, fanout,
// history sink and read API, and the given gateways) on the real broker
// and ClickHouse, with topics and a database of its own, until the test
// ends. It returns the gateways' WebSocket URLs and a function that stops
// one gateway early (by id). Modelled on the gateway package's harness.
func startPipeline(t testing.TB, gateways ...string) (urls []string, stopGateway func(id string)) {
	t.Helper()
	urls, stopGateway, _ = startPipelineOn(t, stacktest.Kafka(t), 1, gateways...)
	return urls, stopGateway
}

// startPipelineOn is startPipeline on the brokers of kcfg, its topics
// replicated replication times; it returns the topics too.
func startPipelineOn(t testing.TB, kcfg kafkawire.Config, replication int16, gateways ...string) (urls []string, stopGateway func(id string), topics kafkawire.Topics) {
	t.Helper()
	admin, err := kcfg.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	prefix := stacktest.Name(t, "lg")
	topics = kafkawire.PrefixedTopics(prefix)
	layout := kafkawire.Layout{Partitions: partitions, ReplicationFactor: replication}
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
	log := stacktest.Logger(t)
	run := func(name string, f func(context.Context) error) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f(ctx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	seq, err := sequencer.New(sequencer.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".sequencer", Logger: log.With("service", "sequencer")})
	if err != nil {
		t.Fatal(err)
	}
	run("sequencer", seq.Run)
	fan, err := fanout.New(fanout.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".fanout", Logger: log.With("service", "fanout")})
	if err != nil {
		t.Fatal(err)
	}
	run("fanout", fan.Run)
	conn, db := stacktest.ClickHouse(t)
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := history.New(history.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".history", Store: store,
		BatchMaxWait: 20 * time.Millisecond, Logger: log.With("service", "history")})
	if err != nil {
		t.Fatal(err)
	}
	run("history sink", sink.Run)
	progress := history.NewProgress(kcfg, topics, prefix+".history")
	t.Cleanup(func() { progress.Close() })
	api, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: serviceToken, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	stops := map[string]func(){}
	for _, id := range gateways {
		g, err := gateway.New(gateway.Config{Kafka: kcfg, Topics: topics, Layout: kafkawire.Layout{Partitions: 2, ReplicationFactor: replication},
			GatewayID: id, TokenKey: tokenKey, History: &gateway.HistoryClient{BaseURL: srv.URL, Token: serviceToken},
			Logger: log.With("service", "gateway", "gateway_id", id)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		stops[id] = run("gateway "+id, func(ctx context.Context) error { return g.Run(ctx, ln) })
		select {
		case <-g.Started():
		case <-time.After(time.Minute):
			t.Fatalf("gateway %s did not start within a minute", id)
		}
		urls = append(urls, "ws://"+ln.Addr().String()+"/ws")
	}
	return urls, func(id string) { stops[id]() }, topics
}
