// Command sequencer assigns contiguous per-conversation seqs to the raw
// topic's records, exactly once, through Kafka transactions (see
// pipeline/sequencer). Run as many instances as needed: they share the raw
// partitions through the consumer group.
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
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sequencer:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("sequencer", flag.ExitOnError)
	var common service.Common
	common.Register(fs, service.DefaultAdminAddr("sequencer"))
	var cfg sequencer.Config
	def := kafkawire.Topics{}.WithDefaults()
	fs.StringVar(&cfg.Topics.Raw, "raw-topic", def.Raw, "topic of raw sends (input)")
	fs.StringVar(&cfg.Topics.Sequenced, "seq-topic", def.Sequenced, "topic of sequenced records (output)")
	fs.StringVar(&cfg.Topics.SequencerState, "state-topic", def.SequencerState, "compacted state store topic")
	fs.StringVar(&cfg.Topics.DeadLetter, "deadletter-topic", def.DeadLetter, "topic of undecodable records")
	fs.StringVar(&cfg.Topics.Heads, "heads-topic", def.Heads, "topic of the heartbeats of conversation heads (gateways find stalled deliveries with it)")
	fs.DurationVar(&cfg.HeadsInterval, "heads-interval", 0, "how often a partition writes its changed heads (default 1s; negative: never)")
	fs.StringVar(&cfg.GroupID, "group-id", "seqchat-sequencer", "consumer group over the raw topic")
	service.GenerationVar(fs, &cfg.Generation, service.PinUsage)
	controlTopic := fs.String("control-topic", generation.ControlTopic, "the control topic (imctl repartition): its generations are sequenced")
	fs.StringVar(&cfg.TransactionalIDPrefix, "transactional-id-prefix", "", "prefix of the transactional id, <prefix>-<instance id or random> (default: the group id)")
	fs.DurationVar(&cfg.Machine.HoldWindow, "hold-window", 0, "how long a send waits for a missing predecessor of its device (default 2s)")
	fs.DurationVar(&cfg.Machine.RecallWindow, "recall-window", 0, "how long after it was sent its sender may recall a message (default 24h; negative: no limit; a group's creator: always)")
	fs.IntVar(&cfg.Machine.RecentPerConversation, "recent-per-conversation", 0, "client_msg_ids remembered per conversation for dedup (default 1000)")
	fs.IntVar(&cfg.Machine.MaxHeldPerConversation, "max-held-per-conversation", 0, "held sends per conversation before the oldest is released (default 1000)")
	fs.IntVar(&cfg.BatchMaxRecords, "batch-max-records", 0, "raw records per transaction at most (default 5000)")
	fs.DurationVar(&cfg.BatchMaxWait, "batch-max-wait", 0, "how long a partition's batch waits for more records (default 1ms; negative: never)")
	fs.DurationVar(&cfg.TransactionLinger, "transaction-linger", 0, "how long a transaction waits for more partitions' batches (default 5ms; negative: never)")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", 0, "consumer group session timeout (default 10s, at least 6s)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	log, err := common.Logger("sequencer")
	if err != nil {
		return err
	}
	admin := service.NewAdmin(common.AdminAddr, log)
	cfg.Kafka = common.Kafka("seqchat-sequencer")
	// Every generation whose topics exist, retired ones too: a fenced
	// generation forwards late writes until its topics are deleted
	// (docs/architecture.md, Retire).
	follower := control.NewFollower(control.FollowerConfig{Kafka: cfg.Kafka, Topic: *controlTopic, Topics: cfg.Topics,
		Logger: log, Registerer: admin.Registry})
	seq, err := control.Serve(cfg.Generation, &control.Instances{Follower: follower, Want: control.Existing, Registerer: admin.Registry, Logger: log,
		New: func(gen *imv1.Generation, reg prometheus.Registerer) (control.Component, error) {
			c := cfg
			c.Generation, c.Logger, c.Registerer = gen.Id, log, reg
			return sequencer.New(c)
		}})
	if err != nil {
		return err
	}
	admin.AddReadyCheck("sequencer", seq.Ready)

	ctx, stop := service.SignalContext()
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return follower.Run(ctx) })
	g.Go(func() error {
		err := seq.Run(ctx)
		stop() // the admin server goes when the sequencer does
		return err
	})
	return g.Wait()
}
