package history

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// Config configures a Sink.
type Config struct {
	Kafka kafkawire.Config
	// Topics: the sink reads Sequenced and writes undecodable records to
	// DeadLetter. Zero fields get kafkawire's defaults. They are generation
	// 1's names: a later generation's sequenced topic is derived from them.
	Topics kafkawire.Topics
	// Generation is the generation of the sequenced topic this sink stores
	// (docs/architecture.md, Repartitioning): during a repartition a sink
	// runs per generation; rows are (conversation, seq) whichever wrote
	// them. Zero means 1.
	Generation uint32
	// GroupID is generation 1's consumer group over the sequenced topic; a
	// later generation's is GroupID.g<g>. Zero means "seqchat-history".
	GroupID string
	// Store receives the rows. Required.
	Store *Store
	// BatchMaxRows caps the records (so the rows) of one partition's batch;
	// an insert carries a batch of every partition that has one. Zero means
	// 5000 (measured: docs/benchmarks.md).
	BatchMaxRows int
	// BatchMaxWait is how long a partition's batch waits for more records
	// once it has one, and how long an insert waits for the other
	// partitions' batches (it goes at once when every claimed partition's
	// is in). Zero means 200ms.
	BatchMaxWait time.Duration
	// RetryMin and RetryMax bound the backoff between attempts while
	// ClickHouse (or the dead-letter topic) fails. Zero means 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// CommitInterval is how often the offsets marked after successful
	// inserts are committed (and once more when a session ends). A crash
	// writes at most this much again, which ReplacingMergeTree collapses.
	// Zero means 1s.
	CommitInterval time.Duration
	// InsertTimeout bounds one insert attempt. Zero means 30s.
	InsertTimeout time.Duration
	// ShutdownTimeout is how long a partition that is being stopped or
	// revoked keeps trying to write its last batch before leaving it to the
	// next owner (nothing is lost: it was not committed). Zero means 10s.
	ShutdownTimeout time.Duration
	// SessionTimeout of the consumer group: how soon a dead instance's
	// partitions move. Zero means 10s (the broker's minimum is 6s).
	SessionTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

// DefaultGroupID is Config.GroupID when zero.
const DefaultGroupID = "seqchat-history"

func (c *Config) setDefaults() {
	c.Topics = c.Topics.WithDefaults()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.Generation == 0 {
		c.Generation = generation.First
	}
	c.Topics = generation.Topics(c.Topics, c.Generation)
	c.GroupID = generation.GroupID(c.GroupID, c.Generation)
	if c.BatchMaxRows == 0 {
		c.BatchMaxRows = 5000
	}
	def(&c.BatchMaxWait, 200*time.Millisecond)
	def(&c.RetryMin, 100*time.Millisecond)
	def(&c.RetryMax, 5*time.Second)
	def(&c.CommitInterval, time.Second)
	def(&c.InsertTimeout, 30*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.SessionTimeout, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("history sink: no store")
	case c.BatchMaxRows < 1:
		return errors.New("history sink: batch max rows must be at least 1")
	case c.BatchMaxWait < 0 || c.InsertTimeout < 0 || c.ShutdownTimeout < 0 || c.CommitInterval < 0:
		return errors.New("history sink: durations must not be negative")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("history sink: want 0 < retry min <= retry max")
	case c.SessionTimeout < 6*time.Second:
		return errors.New("history sink: session timeout below the broker's 6s minimum")
	}
	return nil
}
