// Command history is the history service: it writes the sequenced topic
// into ClickHouse (pipeline/history's Sink) and serves the gateways' read
// API (docs/history-api.md). Run as many instances as needed: they share
// the sequenced partitions through the consumer group, and any instance
// answers reads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/httpserve"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("history", flag.ExitOnError)
	var common service.Common
	common.Register(fs, service.DefaultAdminAddr("history"))
	var cfg history.Config
	def := kafkawire.Topics{}.WithDefaults()
	fs.StringVar(&cfg.Topics.Sequenced, "seq-topic", def.Sequenced, "topic of sequenced records (input)")
	fs.StringVar(&cfg.Topics.DeadLetter, "deadletter-topic", def.DeadLetter, "topic of undecodable records")
	fs.StringVar(&cfg.GroupID, "group-id", history.DefaultGroupID, "consumer group over the sequenced topic")
	service.GenerationVar(fs, &cfg.Generation, service.PinUsage)
	controlTopic := fs.String("control-topic", generation.ControlTopic, "the control topic (imctl repartition): its live generations are stored, and progress and unknown conversations answered over them")
	fs.IntVar(&cfg.BatchMaxRows, "batch-max-rows", 0, "records of a partition's batch at most; an insert carries a batch of every partition (default 5000)")
	fs.DurationVar(&cfg.BatchMaxWait, "batch-max-wait", 0, "how long a batch waits for more records, and an insert for the other partitions' batches (default 200ms)")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", 0, "consumer group session timeout (default 10s, at least 6s)")
	listen := fs.String("listen-addr", "127.0.0.1:8081", "address of the read API")
	maxRequests := fs.Int("max-concurrent-requests", 0, "read API requests querying ClickHouse at once; more wait (default 8)")
	token := fs.String("service-token", "", "bearer token of the gateways calling the read API (required, at least 16 bytes)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	log, err := common.Logger("history")
	if err != nil {
		return err
	}
	if len(*token) < history.MinServiceTokenBytes {
		return errors.New("-service-token (SEQCHAT_SERVICE_TOKEN) is required, at least 16 bytes")
	}
	ctx, stop := service.SignalContext()
	defer stop()

	// Two pools: a burst of reads never starves the sink's inserts, nor the
	// other way round. OpenStore migrates (idempotent) and waits for ClickHouse.
	sinkStore, err := history.OpenStore(ctx, common.ClickHouse(), log)
	if err != nil {
		return stopped(ctx, err)
	}
	defer sinkStore.Close()
	apiStore, err := history.OpenStore(ctx, common.ClickHouse(), log)
	if err != nil {
		return stopped(ctx, err)
	}
	defer apiStore.Close()

	admin := service.NewAdmin(common.AdminAddr, log)
	cfg.Kafka, cfg.Store = common.Kafka("seqchat-history"), sinkStore
	// A sink per live generation, and progress over every live
	// generation's sinks (docs/architecture.md, Repartitioning).
	follower := control.NewFollower(control.FollowerConfig{Kafka: cfg.Kafka, Topic: *controlTopic, Topics: cfg.Topics,
		Logger: log, Registerer: admin.Registry})
	sink, err := control.Serve(cfg.Generation, &control.Instances{Follower: follower, Want: control.Live, Registerer: admin.Registry, Logger: log,
		New: func(gen *imv1.Generation, reg prometheus.Registerer) (control.Component, error) {
			c := cfg
			c.Generation, c.Logger, c.Registerer = gen.Id, log, reg
			return history.New(c)
		}})
	if err != nil {
		return err
	}
	progress := history.NewProgress(cfg.Kafka, cfg.Topics, cfg.GroupID, func() []*imv1.Generation {
		g, _ := follower.Current()
		return generation.Live(g)
	})
	defer progress.Close()
	api, err := history.NewHandler(history.HandlerConfig{Store: apiStore, ServiceToken: *token, MaxConcurrentRequests: *maxRequests,
		Progress: progress, Logger: log.With("server", "api"), Registerer: admin.Registry})
	if err != nil {
		return err
	}
	admin.AddReadyCheck("sink", sink.Ready)
	admin.AddReadyCheck("clickhouse", apiStore.Ping)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return follower.Run(ctx) })
	g.Go(func() error { return httpserve.Serve(ctx, ln, api, log.With("server", "api")) })
	g.Go(func() error {
		err := sink.Run(ctx)
		stop() // the servers go when the sink does
		return err
	})
	return g.Wait()
}

// stopped is nil when a signal ended the wait for ClickHouse: asked to stop,
// the service stops cleanly.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
