// Command fanout routes every sequenced entry to the topics of the gateways
// where its recipients' devices are connected (see pipeline/fanout). Run as
// many instances as needed: they share the sequenced partitions.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	var common service.Common
	common.Register(fs, service.DefaultAdminAddr("fanout"))
	var cfg fanout.Config
	def := kafkawire.Topics{}.WithDefaults()
	fs.StringVar(&cfg.Topics.Sequenced, "seq-topic", def.Sequenced, "topic of sequenced records (input)")
	fs.StringVar(&cfg.Topics.FanoutMembers, "members-topic", def.FanoutMembers, "compacted topic of membership periods")
	fs.StringVar(&cfg.Topics.Presence, "presence-topic", def.Presence, "compacted topic of device presence")
	fs.StringVar(&cfg.Topics.GatewayPrefix, "gateway-topic-prefix", def.GatewayPrefix, "a gateway's topic is this prefix + its id")
	fs.StringVar(&cfg.GroupID, "group-id", "seqchat-fanout", "consumer group over the sequenced topic")
	service.GenerationVar(fs, &cfg.Generation, service.PinUsage)
	controlTopic := fs.String("control-topic", generation.ControlTopic, "the control topic (imctl repartition): its live generations are routed")
	fs.IntVar(&cfg.BatchMaxRecords, "batch-max-records", 0, "entries a partition routes at once at most (default 1000)")
	fs.IntVar(&cfg.ReceiptsMaxMembers, "receipts-max-members", 0, "groups of at most this many members get every read receipt; larger ones only the reader's devices (default 100; -1: none)")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", 0, "how often routed offsets are committed; a restart routes again at most this much (default 1s)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	log, err := common.Logger("fanout")
	if err != nil {
		return err
	}
	admin := service.NewAdmin(common.AdminAddr, log)
	cfg.Kafka = common.Kafka("seqchat-fanout")
	follower := control.NewFollower(control.FollowerConfig{Kafka: cfg.Kafka, Topic: *controlTopic, Topics: cfg.Topics,
		Logger: log, Registerer: admin.Registry})
	f, err := control.Serve(cfg.Generation, &control.Instances{Follower: follower, Want: control.Live, Registerer: admin.Registry, Logger: log,
		New: func(gen *imv1.Generation, reg prometheus.Registerer) (control.Component, error) {
			c := cfg
			c.Generation, c.Logger, c.Registerer = gen.Id, log, reg
			return fanout.New(c)
		}})
	if err != nil {
		return err
	}
	admin.AddReadyCheck("fanout", f.Ready)

	ctx, stop := service.SignalContext()
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return follower.Run(ctx) })
	g.Go(func() error {
		err := f.Run(ctx)
		stop()
		return err
	})
	return g.Wait()
}
