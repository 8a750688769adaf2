package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
)

// setupFlags are the flags of the commands that prepare topics and tables.
type setupFlags struct {
	common            service.Common
	partitions        int
	replicationFactor int
	log               *slog.Logger
}

func parseSetup(name string, args []string) (*setupFlags, error) {
	fs := flag.NewFlagSet("imctl "+name, flag.ContinueOnError)
	var s setupFlags
	s.common.Register(fs, "")
	fs.IntVar(&s.partitions, "partitions", 8, "partitions of the pipeline topics (raw, sequenced and state share it)")
	fs.IntVar(&s.replicationFactor, "replication-factor", 1, "replication factor of new topics (3 in production)")
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return nil, err
	}
	if s.partitions < 1 || s.replicationFactor < 1 {
		return nil, errors.New("-partitions and -replication-factor must be at least 1")
	}
	log, err := s.common.Logger("imctl")
	if err != nil {
		return nil, err
	}
	s.log = log
	return &s, nil
}

func (s *setupFlags) layout() kafkawire.Layout {
	return kafkawire.Layout{Partitions: int32(s.partitions), ReplicationFactor: int16(s.replicationFactor)}
}

func runInit(ctx context.Context, args []string) error {
	s, err := parseSetup("init", args)
	if err != nil {
		return err
	}
	if err := createTopics(s); err != nil {
		return err
	}
	return migrate(ctx, s)
}

func runTopicsCreate(ctx context.Context, args []string) error {
	s, err := parseSetup("topics create", args)
	if err != nil {
		return err
	}
	return createTopics(s)
}

func runTopicsCheck(ctx context.Context, args []string) error {
	s, err := parseSetup("topics check", args)
	if err != nil {
		return err
	}
	admin, err := s.common.Kafka("imctl").NewAdmin()
	if err != nil {
		return err
	}
	defer admin.Close()
	t := kafkawire.Topics{}.WithDefaults()
	n, err := kafkawire.CheckCoPartitioned(admin, t.Raw, t.Sequenced, t.SequencerState)
	if err != nil {
		return err
	}
	fmt.Printf("%s, %s and %s have %d partitions each\n", t.Raw, t.Sequenced, t.SequencerState, n)
	return nil
}

func runMigrate(ctx context.Context, args []string) error {
	s, err := parseSetup("migrate", args)
	if err != nil {
		return err
	}
	return migrate(ctx, s)
}

func createTopics(s *setupFlags) error {
	admin, err := s.common.Kafka("imctl").NewAdmin()
	if err != nil {
		return err
	}
	defer admin.Close()
	specs := kafkawire.CoreSpecs(kafkawire.Topics{}, s.layout())
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		return err
	}
	for _, spec := range specs {
		s.log.Info("topic ready", "topic", spec.Name, "partitions", spec.Partitions)
	}
	return nil
}

func migrate(ctx context.Context, s *setupFlags) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, cfg, err := chstore.Open(ctx, s.common.ClickHouse())
	if err != nil {
		return err
	}
	defer conn.Close()
	applied, err := chstore.Migrate(ctx, conn, cfg.Database)
	if err != nil {
		return err
	}
	s.log.Info("clickhouse schema up to date", "database", cfg.Database, "applied", applied)
	return nil
}
