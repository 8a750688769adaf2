package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/internal/chstore"
)

// Config says where the history lives.
type Config struct {
	// Database holds the messages table. Empty means chstore.DefaultDatabase.
	Database string
}

// Client runs the query pack on one connection. It is safe for concurrent
// use, like the driver.Conn it wraps.
type Client struct {
	conn driver.Conn
	sql  map[string]string // query name -> SQL for the configured database
}

// New renders every query of the pack for cfg.Database; conn stays the
// caller's to close.
func New(conn driver.Conn, cfg Config) (*Client, error) {
	if conn == nil {
		return nil, errors.New("analytics: nil clickhouse connection")
	}
	if cfg.Database == "" {
		cfg.Database = chstore.DefaultDatabase
	}
	names, err := Names()
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, sql: make(map[string]string, len(names))}
	for _, name := range names {
		if c.sql[name], err = SQL(name, cfg.Database); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ConversationDay is one row of MessagesPerDay.
type ConversationDay struct {
	Day            time.Time `ch:"day"` // midnight UTC
	ConversationID string    `ch:"conversation_id"`
	Messages       uint64    `ch:"messages"`
}

// DaySenders is one row of DailyActiveSenders.
type DaySenders struct {
	Day      time.Time `ch:"day"` // midnight UTC
	Senders  uint64    `ch:"senders"`
	Messages uint64    `ch:"messages"`
}

// GroupSize is one row of GroupSizeOverTime: the member count right after
// the membership event at Seq.
type GroupSize struct {
	Seq         uint64    `ch:"seq"`
	SequencedAt time.Time `ch:"sequenced_at"` // whole seconds, UTC
	Kind        string    `ch:"kind"`         // created, joined, left or kicked
	Size        int64     `ch:"size"`
}

// HourLatency is one row of SequencingLatencyByHour; latencies are
// sequenced_at_ms - received_at_ms, signed (the two come from different
// hosts' clocks).
type HourLatency struct {
	Hour    time.Time `ch:"hour"` // start of the hour, UTC
	Entries uint64    `ch:"entries"`
	P50Ms   int64     `ch:"p50_ms"`
	P99Ms   int64     `ch:"p99_ms"`
	MaxMs   int64     `ch:"max_ms"`
}

// ConversationIntegrity is one row of GapAndDuplicateAudit.
type ConversationIntegrity struct {
	ConversationID string `ch:"conversation_id"`
	MaxSeq         uint64 `ch:"max_seq"`
	DistinctSeqs   uint64 `ch:"distinct_seqs"`
	// Rows counts copies that await a merge too, so it depends on when
	// ClickHouse last merged.
	Rows            uint64 `ch:"rows"`
	ConflictingSeqs uint64 `ch:"conflicting_seqs"`
	MissingSeqs     uint64 `ch:"missing_seqs"`
}

// MessagesPerDay counts chat messages per UTC day and conversation for the
// days from first to last, both included (only their UTC dates matter).
func (c *Client) MessagesPerDay(ctx context.Context, first, last time.Time) ([]ConversationDay, error) {
	var out []ConversationDay
	err := c.run(ctx, &out, QueryMessagesPerDay, day(first), day(last))
	return inUTC(out, func(r *ConversationDay) *time.Time { return &r.Day }), err
}

// DailyActiveSenders counts distinct senders of chat messages per UTC day
// for the days from first to last, both included.
func (c *Client) DailyActiveSenders(ctx context.Context, first, last time.Time) ([]DaySenders, error) {
	var out []DaySenders
	err := c.run(ctx, &out, QueryDailyActiveSenders, day(first), day(last))
	return inUTC(out, func(r *DaySenders) *time.Time { return &r.Day }), err
}

// GroupSizeOverTime lists one conversation's member count after each of its
// membership events, in seq order.
func (c *Client) GroupSizeOverTime(ctx context.Context, conversationID string) ([]GroupSize, error) {
	var out []GroupSize
	err := c.run(ctx, &out, QueryGroupSizeOverTime, conversationID)
	return inUTC(out, func(r *GroupSize) *time.Time { return &r.SequencedAt }), err
}

// SequencingLatencyByHour summarises sequencing latency per UTC hour for
// the days from first to last, both included.
func (c *Client) SequencingLatencyByHour(ctx context.Context, first, last time.Time) ([]HourLatency, error) {
	var out []HourLatency
	err := c.run(ctx, &out, QuerySequencingLatencyByHour, day(first), day(last))
	return inUTC(out, func(r *HourLatency) *time.Time { return &r.Hour }), err
}

// GapAndDuplicateAudit counts, per conversation, stored and missing seqs,
// rows, and seqs with conflicting entries. analysis/audit gives the details.
func (c *Client) GapAndDuplicateAudit(ctx context.Context) ([]ConversationIntegrity, error) {
	var out []ConversationIntegrity
	err := c.run(ctx, &out, QueryGapAndDuplicateAudit)
	return out, err
}

func (c *Client) run(ctx context.Context, dest any, name string, args ...any) error {
	sql, ok := c.sql[name]
	if !ok {
		return fmt.Errorf("query %s is not in the pack", name)
	}
	if err := c.conn.Select(ctx, dest, sql, args...); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	return nil
}

// day is the parameter form of a day: its UTC date as 'YYYY-MM-DD'.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// inUTC sets the location of each row's time to UTC (the driver may use the
// server's zone for the instant it read) and returns rows.
func inUTC[R any](rows []R, field func(*R) *time.Time) []R {
	for i := range rows {
		f := field(&rows[i])
		*f = f.UTC()
	}
	return rows
}
