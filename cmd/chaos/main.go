// Command chaos runs the pipeline's services under a steady load, kills
// each of them with SIGKILL several times (and restarts the Kafka broker
// once; on a cluster, kills the busiest broker and the active controller
// and pauses a broker, and with -bridge cuts a sequencer and a gateway
// off the network), then checks every message at every client and in
// ClickHouse (see tools/chaos). Its last line is
//
//	anomalies: lost=0 duplicated=0 reordered=0 gaps=0 (messages=N, kills=K)
//
// It exits 1 if the run could not be made and 2 on any anomaly. Run it with
// `make chaos`, which starts the stack and stops `make up`'s services first
// (they would share the consumer groups).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/tools/chaos"
)

func main() {
	failed, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(2)
	}
}

func run() (failed bool, err error) {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	var cfg chaos.Config
	fs.StringVar(&cfg.BinDir, "bin-dir", "bin", "directory of the service binaries")
	fs.StringVar(&cfg.StackScript, "stack-script", "scripts/stack.sh", "stack script used to restart the broker (empty: no broker restart)")
	fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", kafkawire.DefaultBrokers, "Kafka bootstrap brokers")
	fs.IntVar(&cfg.KafkaNodes, "kafka-nodes", 1, "brokers of the stack (the stack script's SEQCHAT_KAFKA_NODES); more than one: the busiest broker and the active controller are killed and a broker paused, instead of the broker restart")
	fs.DurationVar(&cfg.BrokerDowntime, "broker-downtime", 0, "how long the killed broker stays down (default 20s: its failover is measured meanwhile)")
	fs.DurationVar(&cfg.BrokerPause, "broker-pause", 0, "how long the paused broker stays stopped (default 20s, longer than a consumer session: its failover is measured meanwhile)")
	fs.StringVar(&cfg.Bridge, "bridge", "", "on a cluster: the bridge holding the brokers' address (scripts/stack.sh SEQCHAT_KAFKA_BRIDGE); adds a sequencer and a gateway partition, each service in a network namespace whose link goes down (root, iproute2)")
	fs.DurationVar(&cfg.PartitionLength, "partition-length", 0, "how long a partitioned service is cut off (default 20s)")
	repartitions := fs.String("repartitions", "", "partition counts to move the running pipeline to in turn, comma-separated (imctl repartition, SIGKILLed once mid-way and run again; -repartition-victims killed during each switch); empty: none")
	repartitionVictims := fs.String("repartition-victims", "sequencer,fanout,gateway-a", "services SIGKILLed in turn during each repartition's switch, comma-separated (of "+strings.Join(chaos.RepartitionRoles, ", ")+"; empty: none)")
	fs.DurationVar(&cfg.RepartitionQuiet, "repartition-quiet", 0, "imctl repartition's -quiet (default 20s)")
	fs.StringVar(&cfg.ClickHouseAddr, "clickhouse-addr", chstore.DefaultAddr, "ClickHouse native-protocol address")
	fs.StringVar(&cfg.ClickHouseDatabase, "clickhouse-database", chstore.DefaultDatabase, "ClickHouse database of the history store")
	tokenKey := fs.String("token-key", "", "HMAC key of device tokens, at least 32 bytes (required)")
	fs.StringVar(&cfg.ServiceToken, "service-token", "", "bearer token of the history read API (required)")
	fs.IntVar(&cfg.Kills, "kills", 20, "service kills (SIGKILL then restart)")
	victims := fs.String("victims", strings.Join(chaos.Roles, ","), "roles to kill, comma-separated")
	fs.IntVar(&cfg.MinMessages, "messages", 100000, "keep the load on until this many sends were fired")
	fs.Float64Var(&cfg.Rate, "rate", 400, "sends per second (the default leaves the 2-core reference machine headroom to recover)")
	fs.IntVar(&cfg.Users, "users", 200, "users, one device each")
	fs.IntVar(&cfg.GroupSize, "group-size", 10, "members per group")
	fs.IntVar(&cfg.Groups, "groups", 20, "groups")
	fs.IntVar(&cfg.DMs, "dms", 20, "dm pairs")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "how long the load runs before the first fault, which then waits for a steady load (default 20s; negative: none)")
	fs.DurationVar(&cfg.Pause, "pause", 0, "longest random pause between a recovery and the next kill (default 4s)")
	fs.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", 0, "longest wait for one recovery (default 2m)")
	fs.StringVar(&cfg.LogDir, "log-dir", ".stack/chaos", "directory of the services' logs")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed (default time-based)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return false, err
	}
	if len(*tokenKey) == 0 || cfg.ServiceToken == "" {
		return false, fmt.Errorf("-token-key (SEQCHAT_TOKEN_KEY) and -service-token (SEQCHAT_SERVICE_TOKEN) are required")
	}
	cfg.TokenKey = []byte(*tokenKey)
	cfg.Victims = strings.Split(*victims, ",")
	if *repartitionVictims != "" {
		cfg.RepartitionVictims = strings.Split(*repartitionVictims, ",")
	}
	if *repartitions != "" {
		for _, f := range strings.Split(*repartitions, ",") {
			m, err := strconv.Atoi(f)
			if err != nil || m < 1 {
				return false, fmt.Errorf("-repartitions: %q is not a partition count", f)
			}
			cfg.Repartitions = append(cfg.Repartitions, m)
		}
	}
	cfg.Out = os.Stdout
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := chaos.New(cfg)
	if err != nil {
		return false, err
	}
	ctx, stop := service.SignalContext()
	defer stop()
	rep, err := h.Run(ctx)
	if err != nil {
		return false, err
	}
	if err := rep.Load.WriteSummary(os.Stdout); err != nil {
		return false, err
	}
	for _, e := range rep.Load.AnomalyExamples {
		fmt.Println("client anomaly:", e)
	}
	s := rep.Store
	fmt.Printf("clickhouse: %d rows; missing %d, duplicated %d, conflicts %d, misplaced %d, gaps %d\n",
		s.Rows, s.Missing, s.Duplicated, s.Conflicts, s.Misplaced, s.Gaps)
	for _, e := range s.Examples {
		fmt.Println("clickhouse anomaly:", e)
	}
	fmt.Printf("sequenced log: %d entries of the run's conversations; %d violations\n", rep.Log.Entries, len(rep.Log.Violations))
	for _, v := range rep.Log.Violations {
		fmt.Println("sequenced log violation:", v)
	}
	if len(rep.Load.Rejections) > 0 {
		codes := make([]string, 0, len(rep.Load.Rejections))
		for c, n := range rep.Load.Rejections {
			codes = append(codes, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(codes)
		fmt.Println("refused sends:", codes)
	}
	if rep.Crashes > 0 {
		fmt.Printf("services that exited on their own: %d\n", rep.Crashes)
	}
	fmt.Println(rep.LastLine())
	return rep.Failed(), nil
}
