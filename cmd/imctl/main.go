// Command imctl is the operators' tool: create topics, migrate the history
// store, issue development tokens, send and tail messages, probe health.
//
//	imctl init              topics create + migrate (what `make up` runs)
//	imctl topics create     create the pipeline's topics (idempotent)
//	imctl topics check      verify raw, sequenced and state topics are co-partitioned
//	imctl migrate           apply ClickHouse migrations (idempotent)
//	imctl token             issue a development token (-user, -device, -ttl)
//	imctl send              send a chat message through the ingest path
//	imctl tail              print a conversation's entries in seq order
//	imctl audit             scan history for gaps, duplicates, clock regressions (exit 1 on anomalies)
//	imctl probe URL         exit 0 if URL answers 200 (container healthchecks)
//	imctl repartition       move to another partition count on a running system (-partitions M; resumable)
//	imctl repartition status  the generations of the partitioned topics and a repartition's progress
//	imctl repartition cleanup delete the topics of retired generations
//
// Every command takes the common flags (-kafka-brokers, -clickhouse-addr, ...)
// or their SEQCHAT_* environment variables; `imctl CMD -h` lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/seqchat/seqchat/internal/service"
)

type command struct {
	usage string
	run   func(ctx context.Context, args []string) error
}

func main() {
	commands := map[string]command{
		"init":                {"topics create + migrate", runInit},
		"topics create":       {"create the pipeline's topics", runTopicsCreate},
		"topics check":        {"check raw, sequenced and state topics are co-partitioned", runTopicsCheck},
		"migrate":             {"apply ClickHouse migrations", runMigrate},
		"probe":               {"exit 0 if the URL answers 200", runProbe},
		"token":               {"issue a development token for a user's device", runToken},
		"send":                {"send a chat message through the ingest path", runSend},
		"tail":                {"print a conversation's entries in seq order", runTail},
		"audit":               {"scan history for gaps, duplicates and out-of-order timestamps", runAudit},
		"repartition":         {"move to another partition count on a running system (resumable)", runRepartition},
		"repartition status":  {"the generations of the partitioned topics and a repartition's progress", runRepartitionStatus},
		"repartition cleanup": {"delete the topics of retired generations, once quiet", runRepartitionCleanup},
	}
	args := os.Args[1:]
	name, rest := "", args
	for _, n := range []int{2, 1} {
		if len(args) >= n {
			if _, ok := commands[strings.Join(args[:n], " ")]; ok {
				name, rest = strings.Join(args[:n], " "), args[n:]
				break
			}
		}
	}
	if name == "" {
		fmt.Fprintln(os.Stderr, "usage: imctl COMMAND [flags]")
		for _, n := range []string{"init", "topics create", "topics check", "migrate", "token", "send", "tail", "audit", "probe", "repartition", "repartition status", "repartition cleanup"} {
			fmt.Fprintf(os.Stderr, "  %-19s %s\n", n, commands[n].usage)
		}
		os.Exit(2)
	}
	ctx, stop := service.SignalContext()
	defer stop()
	if err := commands[name].run(ctx, rest); err != nil {
		fmt.Fprintf(os.Stderr, "imctl %s: %v\n", name, err)
		os.Exit(1)
	}
}
