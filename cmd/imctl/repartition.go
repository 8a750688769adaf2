package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/tools/repartition"
)

// repartitionFlags are the flags of `imctl repartition`, its status and
// its cleanup.
type repartitionFlags struct {
	common            service.Common
	topicsPrefix      string
	partitions        int
	replicationFactor int
	cfg               repartition.Config
}

// The flags each subcommand takes beyond the common ones.
const (
	statusFlags = iota
	runFlags
	cleanupFlags
)

func parseRepartition(name string, args []string, kind int) (*repartitionFlags, error) {
	fs := flag.NewFlagSet("imctl "+name, flag.ContinueOnError)
	var f repartitionFlags
	f.common.Register(fs, "")
	fs.StringVar(&f.cfg.ControlTopic, "control-topic", generation.ControlTopic, "the control topic (compacted, one partition)")
	fs.StringVar(&f.topicsPrefix, "topics-prefix", "", "name the topics <prefix>.raw, <prefix>.seq, ... (a test's or benchmark's set) instead of im.raw, im.seq, ...")
	fs.StringVar(&f.cfg.SequencerGroup, "sequencer-group", "seqchat-sequencer", "generation 1's sequencer group (later generations: .g<g>)")
	fs.StringVar(&f.cfg.FanoutGroup, "fanout-group", "seqchat-fanout", "generation 1's fanout group (later generations: .g<g>)")
	fs.StringVar(&f.cfg.HistoryGroup, "history-group", "seqchat-history", "generation 1's history sink group (later generations: .g<g>)")
	switch kind {
	case runFlags:
		fs.IntVar(&f.partitions, "partitions", 0, "the partition count to move to (required)")
		fs.IntVar(&f.replicationFactor, "replication-factor", 1, "replication factor of the new topics (3 in production)")
		fs.DurationVar(&f.cfg.Quiet, "quiet", 0, "the old generation is drained once nothing was appended to its raw topic for this long (default 1m)")
	case cleanupFlags:
		fs.DurationVar(&f.cfg.Quiet, "quiet", 0, "a retired generation is deleted once nothing was appended to its raw topic for this long (default 1m)")
	}
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return nil, err
	}
	if kind == runFlags {
		switch {
		case f.partitions < 1 || f.partitions > generation.MaxPartitions:
			return nil, fmt.Errorf("-partitions must be between 1 and %d (got %d)", generation.MaxPartitions, f.partitions)
		case f.replicationFactor < 1:
			return nil, errors.New("-replication-factor must be at least 1")
		}
	}
	if f.cfg.Quiet < 0 {
		return nil, errors.New("-quiet must not be negative")
	}
	f.cfg.Kafka = f.common.Kafka("imctl")
	f.cfg.Topics = kafkawire.Topics{}.WithDefaults()
	if f.topicsPrefix != "" {
		f.cfg.Topics = kafkawire.PrefixedTopics(f.topicsPrefix)
	}
	f.cfg.Layout = kafkawire.Layout{ReplicationFactor: int16(f.replicationFactor)}
	f.cfg.Out = os.Stdout
	return &f, nil
}

func runRepartition(ctx context.Context, args []string) error {
	return withRepartitionTool("repartition", args, runFlags, func(tool *repartition.Tool, f *repartitionFlags) error {
		return tool.Run(ctx, int32(f.partitions))
	})
}

func runRepartitionStatus(ctx context.Context, args []string) error {
	return withRepartitionTool("repartition status", args, statusFlags, func(tool *repartition.Tool, _ *repartitionFlags) error {
		return tool.Status(ctx)
	})
}

func runRepartitionCleanup(ctx context.Context, args []string) error {
	return withRepartitionTool("repartition cleanup", args, cleanupFlags, func(tool *repartition.Tool, _ *repartitionFlags) error {
		return tool.Cleanup(ctx)
	})
}

// withRepartitionTool parses the command's flags and runs do with a tool
// built from them, closing it after.
func withRepartitionTool(name string, args []string, kind int, do func(*repartition.Tool, *repartitionFlags) error) error {
	f, err := parseRepartition(name, args, kind)
	if err != nil {
		return err
	}
	tool, err := repartition.New(f.cfg)
	if err != nil {
		return err
	}
	defer tool.Close()
	return do(tool, f)
}
