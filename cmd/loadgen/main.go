// Command loadgen drives an open-loop message load through running
// gateways (or, with -target centrifugo, a Centrifugo server), measures
// send-to-delivery latency, checks the ordering guarantees on everything
// it received, and writes a JSON result and a PNG latency histogram (see
// tools/loadgen). It exits 1 if the run failed and 2 if it found
// anomalies.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// defaultURL is each target's local address: cmd/gateway's and
// scripts/centrifugo.sh's.
var defaultURL = map[string]string{
	loadgen.TargetSeqchat:    "ws://127.0.0.1:8090/ws",
	loadgen.TargetCentrifugo: "ws://127.0.0.1:18000/connection/websocket",
}

// devCentrifugoSecret is scripts/centrifugo.sh's default secret
// (SEQCHAT_CENTRIFUGO_SECRET overrides both).
const devCentrifugoSecret = "seqchat-dev-centrifugo-secret"

func main() {
	failed, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "loadgen: anomalies found")
		os.Exit(2)
	}
}

func run() (anomalies bool, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ExitOnError)
	var cfg loadgen.Config
	fs.StringVar(&cfg.Target, "target", loadgen.TargetSeqchat, "what to drive: seqchat (our gateways) or centrifugo")
	gateways := fs.String("gateways", "", "WebSocket URLs, comma-separated; devices are spread over them (default "+
		defaultURL[loadgen.TargetSeqchat]+", with -target centrifugo "+defaultURL[loadgen.TargetCentrifugo]+")")
	tokenKey := fs.String("token-key", "", "the gateways' HMAC token key, at least 32 bytes (required for -target seqchat)")
	cfSecret := fs.String("centrifugo-secret", devCentrifugoSecret, "Centrifugo's HMAC key of connection JWTs, for -target centrifugo (the default is scripts/centrifugo.sh's)")
	fs.IntVar(&cfg.Users, "users", 200, "users, one device each")
	fs.IntVar(&cfg.GroupSize, "group-size", 10, "members per group")
	fs.IntVar(&cfg.Groups, "groups", 20, "groups (-1: none)")
	fs.IntVar(&cfg.DMs, "dms", 20, "dm pairs (-1: none)")
	fs.Float64Var(&cfg.Rate, "rate", 200, "total sends per second")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to send (default 30s)")
	fs.DurationVar(&cfg.Drain, "drain", 0, "how long to wait for deliveries after the last send (default 30s)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "how long the connected devices stay idle before the load starts")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of user and group ids (default time-based)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed (default time-based)")
	jsonPath := fs.String("json", "loadgen-result.json", "result file")
	pngPath := fs.String("png", "", "latency histogram PNG (default: the result file's name with .png)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return false, err
	}
	if *tokenKey == "" && cfg.Target == loadgen.TargetSeqchat {
		return false, fmt.Errorf("-token-key (SEQCHAT_TOKEN_KEY) is required for -target seqchat")
	}
	if *gateways == "" {
		*gateways = defaultURL[cfg.Target]
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return false, fmt.Errorf("log level %q: %w", *logLevel, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, g := range strings.Split(*gateways, ",") {
		if g = strings.TrimSpace(g); g != "" {
			cfg.Gateways = append(cfg.Gateways, g)
		}
	}
	cfg.TokenKey = []byte(*tokenKey)
	cfg.CentrifugoSecret = []byte(*cfSecret)
	if *pngPath == "" {
		*pngPath = strings.TrimSuffix(*jsonPath, filepath.Ext(*jsonPath)) + ".png"
	}
	gen, err := loadgen.New(cfg)
	if err != nil {
		return false, err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return false, err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := service.SignalContext()
	defer stop()
	fmt.Fprintf(os.Stderr, "loadgen: run %s\n", gen.RunID())
	res, err := gen.Run(ctx, os.Stderr)
	if err != nil {
		return false, err
	}
	if err := writeFile(*jsonPath, res.WriteJSON); err != nil {
		return false, err
	}
	if err := writeFile(*pngPath, res.Histogram.WritePNG); err != nil {
		return false, err
	}
	if err := res.WriteSummary(os.Stdout); err != nil {
		return false, err
	}
	fmt.Printf("result %s, histogram %s\n", *jsonPath, *pngPath)
	return res.Failed(), nil
}

func writeFile(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
