// Command ingest serves the HTTP API through which server-side senders (bots,
// system notices, imports) write into the pipeline: it validates each send,
// produces it to im.raw and answers 202 only after the broker acknowledged it.
// docs/ingest-api.md is the reference; the logic lives in pipeline/ingest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/httpserve"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/ingest"
)

type flags struct {
	common          service.Common
	listenAddr      string
	serviceToken    string
	maxBodyBytes    int
	maxRequestBytes int64
	generation      uint32
	controlTopic    string
	controlStale    time.Duration
}

func main() {
	f, err := parseFlags(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := service.SignalContext()
	err = run(ctx, f)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, getenv func(string) string) (*flags, error) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var f flags
	f.common.Register(fs, service.DefaultAdminAddr("ingest"))
	fs.StringVar(&f.listenAddr, "listen-addr", "127.0.0.1:8080", "address of the HTTP API")
	fs.StringVar(&f.serviceToken, "service-token", "", fmt.Sprintf(
		"bearer token callers must present (required, at least %d bytes; prefer the environment variable %s)",
		ingest.MinServiceTokenBytes, service.EnvName("service-token")))
	service.GenerationVar(fs, &f.generation, service.WriteUsage)
	fs.StringVar(&f.controlTopic, "control-topic", generation.ControlTopic, "the control topic (imctl repartition): sends go to the generation it says")
	fs.DurationVar(&f.controlStale, "control-stale", 0, "sends wait (then 503 after the write timeout) while the control topic was not read to its end for this long (default 10s)")
	fs.IntVar(&f.maxBodyBytes, "max-body-bytes", ingest.DefaultMaxBodyBytes, "largest message body, in bytes")
	fs.Int64Var(&f.maxRequestBytes, "max-request-bytes", ingest.DefaultMaxRequestBytes, "largest HTTP request body, in bytes")
	if err := service.Parse(fs, args, getenv); err != nil {
		return nil, err
	}
	if f.serviceToken == "" {
		return nil, fmt.Errorf("a service token is required: set %s (or -service-token)", service.EnvName("service-token"))
	}
	if err := f.handlerConfig().Validate(); err != nil {
		return nil, err
	}
	if err := (ingest.Limits{MaxBodyBytes: f.maxBodyBytes}).Validate(); err != nil {
		return nil, fmt.Errorf("-max-body-bytes: %w", err)
	}
	return &f, nil
}

func (f *flags) handlerConfig() ingest.HandlerConfig {
	return ingest.HandlerConfig{ServiceToken: f.serviceToken, MaxRequestBytes: f.maxRequestBytes}
}

// run serves the API and the admin endpoints until ctx ends or one server
// fails, then closes the Ingester, after in-flight requests finished.
func run(ctx context.Context, f *flags) error {
	log, err := f.common.Logger("ingest")
	if err != nil {
		return err
	}
	admin := service.NewAdmin(f.common.AdminAddr, log)
	kcfg := f.common.Kafka("ingest")
	topic := generation.Topics(kafkawire.Topics{}, max(f.generation, generation.First)).Raw
	var follower *control.Follower
	if f.generation == 0 { // not pinned: the generation the control topic says
		follower = control.NewFollower(control.FollowerConfig{Kafka: kcfg, Topic: f.controlTopic, Logger: log, Registerer: admin.Registry})
	}
	ing, err := ingest.New(ingest.Config{
		Kafka:        kcfg,
		Topic:        topic,
		Control:      follower,
		ControlStale: f.controlStale,
		Limits:       ingest.Limits{MaxBodyBytes: f.maxBodyBytes},
		Registerer:   admin.Registry,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	admin.AddReadyCheck("kafka", ing.Ready)
	hcfg := f.handlerConfig()
	hcfg.Logger = log
	ln, err := net.Listen("tcp", f.listenAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen %s: %w", f.listenAddr, err), ing.Close())
	}
	log.Info("ingest starting", "listen_addr", ln.Addr().String(), "topic", topic, "brokers", f.common.KafkaBrokers)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return admin.Run(gctx) })
	if follower != nil {
		g.Go(func() error { return follower.Run(gctx) })
	}
	g.Go(func() error {
		return httpserve.Serve(gctx, ln, ingest.NewHandler(ing, hcfg), log.With("server", "api"))
	})
	err = g.Wait() // Serve returns once in-flight requests are done
	if cerr := ing.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	log.Info("ingest stopped", "err", err)
	return err
}
