package ingest

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// Defaults of Config and Limits (what a zero field means).
const (
	DefaultTopic               = "im.raw"
	DefaultOrigin              = "ingest"
	DefaultWriteTimeout        = 30 * time.Second
	DefaultControlStale        = 10 * time.Second
	DefaultMaxBodyBytes        = 16 << 10
	DefaultMaxIDBytes          = 128
	DefaultMaxContentTypeBytes = 128
	DefaultMaxTitleBytes       = 256
	DefaultMaxInitialMembers   = 1000
)

// Config configures an Ingester.
type Config struct {
	// Kafka says how to reach the brokers.
	Kafka kafkawire.Config
	// Topic is the raw topic: with Control, generation 1's, and a later
	// generation's is Topic.g<g>. Zero means "im.raw".
	Topic string
	// Control, when set, is the service's view of the control topic
	// (docs/architecture.md, Generations and the control topic): sends go
	// to the raw topic of the generation it says ingest writes to, in a
	// view read to the topic's end within ControlStale, so that no send
	// reaches an old generation long after the switch: with an older view
	// a send waits for a fresh one (a broker outage stops the follower),
	// and is refused (ErrUnavailable) if none comes within WriteTimeout.
	// Nil means Topic alone.
	Control *control.Follower
	// ControlStale bounds the age of Control's view. Zero means 10s.
	ControlStale time.Duration
	// Origin is written into every record: where the sends entered the
	// pipeline. Zero means "ingest"; a gateway passes its gateway id.
	Origin string
	// Limits bound the fields of a send. Zero fields mean their defaults.
	Limits Limits
	// WriteTimeout bounds one Submit's wait for the broker, longer than a
	// broker restart: a send refused meanwhile refuses its client's later
	// sends of the conversation too. Zero means 30s.
	WriteTimeout time.Duration
	// Linger is how long a produce request waits for more sends once it
	// has one: the sends of every partition within it share one request,
	// which is what the broker's CPU is spent on. Zero means 1ms; negative
	// means no wait.
	Linger time.Duration
	// Registerer receives the metrics. Nil means metrics are not registered.
	Registerer prometheus.Registerer
	// Logger logs broker failures. Nil means discard.
	Logger *slog.Logger
}

// Limits bound the size of a send's fields, in bytes unless said otherwise.
type Limits struct {
	MaxBodyBytes        int // zero means 16384
	MaxIDBytes          int // zero means 128; applies to every id, conversation ids included
	MaxContentTypeBytes int // zero means 128
	MaxTitleBytes       int // zero means 256
	MaxInitialMembers   int // zero means 1000 (a count, not bytes)
}

func (l *Limits) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxBodyBytes, DefaultMaxBodyBytes)
	def(&l.MaxIDBytes, DefaultMaxIDBytes)
	def(&l.MaxContentTypeBytes, DefaultMaxContentTypeBytes)
	def(&l.MaxTitleBytes, DefaultMaxTitleBytes)
	def(&l.MaxInitialMembers, DefaultMaxInitialMembers)
}

// Validate reports a negative limit (zero is the default, not "nothing").
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxBodyBytes", l.MaxBodyBytes}, {"MaxIDBytes", l.MaxIDBytes}, {"MaxContentTypeBytes", l.MaxContentTypeBytes},
		{"MaxTitleBytes", l.MaxTitleBytes}, {"MaxInitialMembers", l.MaxInitialMembers},
	} {
		if f.v < 0 {
			return fmt.Errorf("limits: %s is %d, want >= 0", f.name, f.v)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Origin == "" {
		c.Origin = DefaultOrigin
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ControlStale == 0 {
		c.ControlStale = DefaultControlStale
	}
	if c.Linger == 0 {
		c.Linger = kafkawire.DefaultSendLinger
	}
	c.Linger = max(c.Linger, 0)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Limits.setDefaults()
}

// Validate reports a configuration New refuses. Zero fields count as their
// defaults.
func (c Config) Validate() error {
	c.setDefaults()
	if err := checkID(c.Origin, true, DefaultMaxIDBytes); err != "" {
		return fmt.Errorf("ingest config: origin %q: %s", c.Origin, err)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("ingest config: WriteTimeout is %v, want > 0", c.WriteTimeout)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("ingest config: %w", err)
	}
	return nil
}
