// Command gateway serves the WebSocket client protocol (see pipeline/gateway
// and schemas/wsprotocol/protocol.md). Run several, each with its own
// -gateway-id: each consumes its own topic, and devices may reconnect to any.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/gateway"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	var common service.Common
	common.Register(fs, service.DefaultAdminAddr("gateway"))
	var cfg gateway.Config
	host, _ := os.Hostname()
	fs.StringVar(&cfg.GatewayID, "gateway-id", host, "this gateway's id; its topic is im.gw.<id>")
	listen := fs.String("listen-addr", "127.0.0.1:8090", "address of the WebSocket endpoint (/ws)")
	tokenKey := fs.String("token-key", "", "HMAC key that signs device tokens, at least 32 bytes (required)")
	historyURL := fs.String("history-url", "http://127.0.0.1:8081", "base URL of the history read API")
	serviceToken := fs.String("service-token", "", "service token for the history read API (required)")
	partitions := fs.Int("partitions", 8, "partitions of this gateway's topic when it creates it")
	service.GenerationVar(fs, &cfg.WriteGeneration, service.WriteUsage)
	fs.DurationVar(&cfg.Ingest.ControlStale, "control-stale", 0, "sends wait (then unavailable after the write timeout) while the control topic was not read to its end for this long (default 10s)")
	controlTopic := fs.String("control-topic", generation.ControlTopic, "the control topic (imctl repartition): sends go to the generation it says, new connections settle against its live generations")
	replication := fs.Int("replication-factor", 1, "replication factor of the gateway's topic when it creates it (3 on a cluster, as imctl's)")
	fs.IntVar(&cfg.MaxFrameBytes, "max-frame-bytes", 0, "largest client frame (default 64 KiB)")
	fs.Float64Var(&cfg.SendsPerSecond, "sends-per-second", 0, "sends per connection per second (default 50)")
	fs.IntVar(&cfg.SendBurst, "send-burst", 0, "burst of sends per connection (default 100)")
	fs.IntVar(&cfg.OutboundQueue, "outbound-queue", 0, "frames queued for a slow client before it is dropped (default 1024)")
	fs.DurationVar(&cfg.GapWait, "gap-wait", 0, "wait for the live stream to fill a gap before reading history (default 300ms)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", 0, "WebSocket ping interval (default 20s)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "connections open at once, hellos included (default: the open-file limit less -fd-reserve; negative: none)")
	fs.IntVar(&cfg.FDReserve, "fd-reserve", 0, "file descriptors the default -max-connections keeps for the gateway's own connections (default 512)")
	fs.IntVar(&cfg.MaxConnectionsPerUser, "max-connections-per-user", 0, "one user's connections to this gateway (default 32; negative: none)")
	fs.Int64Var(&cfg.MemoryLimit, "memory-limit", 0, "bytes held from the OS before new connections are refused (default 90% of GOMEMLIMIT if set, else none; negative: none)")
	fs.DurationVar(&cfg.OverloadDelay, "overload-delay", 0, "refuse new sends (unavailable, retry_after_ms) when the pipeline is past capacity: live entries this far behind and the backlog growing (default 1s; negative: never)")
	fs.DurationVar(&cfg.StallAfter, "stall-after", 0, "read a conversation from history for a device behind its head (the sequencers' heartbeats) this long: its delivery stalled (default 10s; negative: never)")
	fs.DurationVar(&cfg.Ingest.Linger, "ingest-linger", 0, "how long a produce request of sends waits for more (default 1ms; negative: none)")
	fs.BoolVar(&cfg.Demo, "demo", false, "serve the demo chat page at / and issue tokens to anyone (development only)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	if *serviceToken == "" {
		return fmt.Errorf("-service-token (SEQCHAT_SERVICE_TOKEN) is required")
	}
	log, err := common.Logger("gateway")
	if err != nil {
		return err
	}
	admin := service.NewAdmin(common.AdminAddr, log)
	cfg.Kafka = common.Kafka("seqchat-gateway-" + cfg.GatewayID)
	cfg.Layout.Partitions, cfg.Layout.ReplicationFactor = int32(*partitions), int16(*replication)
	cfg.TokenKey = []byte(*tokenKey)
	cfg.History = &gateway.HistoryClient{BaseURL: *historyURL, Token: *serviceToken}
	cfg.Logger = log
	cfg.Registerer = admin.Registry
	follower := control.NewFollower(control.FollowerConfig{Kafka: cfg.Kafka, Topic: *controlTopic, Logger: log, Registerer: admin.Registry})
	cfg.Control = follower
	g, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	admin.AddReadyCheck("gateway", g.Ready)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := service.SignalContext()
	defer stop()
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return admin.Run(ctx) })
	eg.Go(func() error { return follower.Run(ctx) })
	eg.Go(func() error {
		// Connections wait for the generations: without them every send
		// would be refused (unavailable).
		if _, err := follower.Wait(ctx); err != nil {
			return nil // stopped meanwhile
		}
		err := g.Run(ctx, ln)
		stop()
		return err
	})
	return eg.Wait()
}
