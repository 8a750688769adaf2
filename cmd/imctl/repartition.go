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

// repartitionFlags are the flags of `imctl repartition` and its status.
type repartitionFlags struct {
	common            service.Common
	partitions        int
	replicationFactor int
	sequencerOnly     bool
	cfg               repartition.Config
}

func parseRepartition(name string, args []string, run bool) (*repartitionFlags, error) {
	fs := flag.NewFlagSet("imctl "+name, flag.ContinueOnError)
	var f repartitionFlags
	f.common.Register(fs, "")
	fs.StringVar(&f.cfg.ControlTopic, "control-topic", generation.ControlTopic, "the control topic (compacted, one partition)")
	fs.StringVar(&f.cfg.SequencerGroup, "sequencer-group", "seqchat-sequencer", "generation 1's sequencer group (later generations: .g<g>)")
	if run {
		fs.IntVar(&f.partitions, "partitions", 0, "the partition count to move to (required)")
		fs.IntVar(&f.replicationFactor, "replication-factor", 1, "replication factor of the new topics (3 in production)")
		fs.DurationVar(&f.cfg.Quiet, "quiet", 0, "the old generation is drained once nothing was appended to its raw topic for this long (default 1m)")
		fs.BoolVar(&f.sequencerOnly, "sequencer-only", false, "acknowledge that only the sequencers hand over yet: the fanout, history and gateways "+
			"do not read a new generation's sequenced topic (docs/architecture.md, Repartitioning)")
	}
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return nil, err
	}
	if run {
		switch {
		case f.partitions < 1 || f.partitions > generation.MaxPartitions:
			return nil, fmt.Errorf("-partitions must be between 1 and %d (got %d)", generation.MaxPartitions, f.partitions)
		case f.replicationFactor < 1:
			return nil, errors.New("-replication-factor must be at least 1")
		case f.cfg.Quiet < 0:
			return nil, errors.New("-quiet must not be negative")
		case !f.sequencerOnly:
			return nil, errors.New("only the sequencers take part in a repartition yet: the fanout, history and gateways would not read " +
				"the new generation's sequenced topic, and deliveries would stop; -sequencer-only runs it anyway (tests, staging)")
		}
	}
	f.cfg.Kafka = f.common.Kafka("imctl")
	f.cfg.Topics = kafkawire.Topics{}.WithDefaults()
	f.cfg.Layout = kafkawire.Layout{ReplicationFactor: int16(f.replicationFactor)}
	f.cfg.Out = os.Stdout
	return &f, nil
}

func runRepartition(ctx context.Context, args []string) error {
	f, err := parseRepartition("repartition", args, true)
	if err != nil {
		return err
	}
	tool, err := repartition.New(f.cfg)
	if err != nil {
		return err
	}
	defer tool.Close()
	return tool.Run(ctx, int32(f.partitions))
}

func runRepartitionStatus(ctx context.Context, args []string) error {
	f, err := parseRepartition("repartition status", args, false)
	if err != nil {
		return err
	}
	tool, err := repartition.New(f.cfg)
	if err != nil {
		return err
	}
	defer tool.Close()
	return tool.Status(ctx)
}
