package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/seqchat/seqchat/analysis/audit"
	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/service"
)

// runAudit scans the history store for gaps, conflicting duplicates, reused
// client_msg_ids and sequencing clocks that went backwards, prints the
// report (text or JSON) on stdout, and fails when it found any, so scripts
// and cron jobs can alert on the exit status.
func runAudit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("imctl audit", flag.ContinueOnError)
	var common service.Common
	common.Register(fs, "")
	conversation := fs.String("conversation", "", "audit only this conversation (default: all)")
	since := fs.String("since", "", "audit only conversations with a row sequenced or inserted since this RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	maxConversations := fs.Int("max-conversations", audit.DefaultMaxConversations, "conversations listed in the report at most (totals count all)")
	maxDetails := fs.Int("max-details", audit.DefaultMaxDetails, "items per list of a conversation at most (counts stay exact)")
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *maxConversations < 1 || *maxDetails < 1 {
		return fmt.Errorf("-max-conversations and -max-details must be at least 1")
	}
	cfg := audit.Config{Conversation: *conversation, MaxConversations: *maxConversations, MaxDetails: *maxDetails}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return fmt.Errorf("-since: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)
		}
		cfg.Since = t
	}

	conn, chCfg, err := chstore.Open(ctx, common.ClickHouse())
	if err != nil {
		return err
	}
	defer conn.Close()
	cfg.Database = chCfg.Database
	auditor, err := audit.New(conn, cfg)
	if err != nil {
		return err
	}
	report, err := auditor.Scan(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(os.Stdout)
	}
	if err != nil {
		return fmt.Errorf("print the report: %w", err)
	}
	if report.HasAnomalies() {
		return fmt.Errorf("%d anomalies in %d conversations", report.Totals.Anomalies(), report.Totals.AnomalousConversations)
	}
	return nil
}
