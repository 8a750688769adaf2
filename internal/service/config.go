package service

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// EnvPrefix starts every environment variable the binaries read.
const EnvPrefix = "SEQCHAT_"

// EnvName is the environment variable behind a flag: -kafka-brokers is
// SEQCHAT_KAFKA_BROKERS.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable (EnvName). Flags win over environment,
// environment wins over defaults.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// Common is the configuration every service shares.
type Common struct {
	// KafkaBrokers is a comma-separated bootstrap list.
	KafkaBrokers string
	// ClickHouseAddr, ClickHouseDatabase: the history store.
	ClickHouseAddr     string
	ClickHouseDatabase string
	// AdminAddr serves /metrics, /healthz and /readyz.
	AdminAddr string
	// InstanceID makes the consumer group member static (kafkawire.Config).
	InstanceID string
	// FetchMaxWait and FetchMinBytes shape the consumers' fetches (kafkawire.Config).
	FetchMaxWait  time.Duration
	FetchMinBytes int32
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string
	LogFormat string
}

// Register adds the common flags to fs; adminAddr is this binary's default.
func (c *Common) Register(fs *flag.FlagSet, adminAddr string) {
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", kafkawire.DefaultBrokers, "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&c.ClickHouseAddr, "clickhouse-addr", chstore.DefaultAddr, "ClickHouse native-protocol address")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", chstore.DefaultDatabase, "ClickHouse database of the history store")
	fs.StringVar(&c.AdminAddr, "admin-addr", adminAddr, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&c.InstanceID, "instance-id", "", "static consumer group member id, unique per process (e.g. the pod name): "+
		"a restart takes its partitions back at once; empty: dynamic membership")
	fs.DurationVar(&c.FetchMaxWait, "kafka-fetch-max-wait", 0, "longest wait of a consumer's fetch for -kafka-fetch-min-bytes (default 500ms)")
	fs.Func("kafka-fetch-min-bytes", "bytes a consumer's fetch waits for, up to -kafka-fetch-max-wait (default 1: answer at once)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		c.FetchMinBytes = int32(n)
		return err
	})
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
}

// Kafka is the Kafka client configuration for clientID.
func (c Common) Kafka(clientID string) kafkawire.Config {
	return kafkawire.Config{Brokers: kafkawire.ParseBrokers(c.KafkaBrokers), ClientID: clientID, InstanceID: c.InstanceID,
		FetchMaxWait: c.FetchMaxWait, FetchMinBytes: c.FetchMinBytes}
}

// ClickHouse is the history store configuration.
func (c Common) ClickHouse() chstore.Config {
	return chstore.Config{Addr: c.ClickHouseAddr, Database: c.ClickHouseDatabase}
}

// Logger builds the structured logger, tagged with the service name.
func (c Common) Logger(service string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.LogFormat {
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", c.LogFormat)
	}
	return slog.New(h).With("service", service), nil
}

// GenerationVar registers -generation: the generation of the partitioned
// topics (raw, sequenced, sequencer state, fanout members) a service works
// on; imctl repartition moves the pipeline from one to the next. usage
// says what it does in this service. Unset, *p stays as it is.
func GenerationVar(fs *flag.FlagSet, p *uint32, usage string) {
	fs.Func("generation", usage,
		func(s string) error {
			g, err := strconv.ParseUint(s, 10, 32)
			if err != nil || g < 1 {
				return fmt.Errorf("a generation is a whole number from 1, not %q", s)
			}
			*p = uint32(g)
			return nil
		})
}

// PinUsage is -generation's usage in the services that run an instance
// per generation.
const PinUsage = "run only this generation of the partitioned topics (imctl repartition; g > 1: topics and group .g<g>); " +
	"default: an instance per generation the control topic lists, started and stopped as it changes"

// WriteUsage is -generation's usage in the services that ingest.
const WriteUsage = "write only to this generation's raw topic (imctl repartition; g > 1: <raw topic>.g<g>); " +
	"default: the generation the control topic says ingest writes to"
