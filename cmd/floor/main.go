// Command floor measures Kafka alone over the pipeline's hops, with no
// logic (see tools/floor), at one rate, and writes the result as the
// load generator's JSON, for `make bench` to set beside the pipeline's.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/tools/floor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	var common service.Common
	common.Register(fs, "")
	var cfg floor.Config
	fs.Float64Var(&cfg.Rate, "rate", 500, "records per second")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to send (default 20s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "how long to wait for the last records (default 30s)")
	fs.IntVar(&cfg.Keys, "keys", 0, "conversation keys (default 1000)")
	fs.DurationVar(&cfg.TransactionLinger, "transaction-linger", 0, "how long a relay transaction waits for more partitions' records (default: the sequencer's; negative: none)")
	jsonPath := fs.String("json", "floor-result.json", "result file")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	log, err := common.Logger("floor")
	if err != nil {
		return err
	}
	cfg.Kafka = common.Kafka("seqchat-floor")
	cfg.Logger = log
	ctx, stop := service.SignalContext()
	defer stop()
	res, err := floor.Run(ctx, cfg)
	if err != nil {
		return err
	}
	f, err := os.Create(*jsonPath)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return res.WriteSummary(os.Stdout)
}
