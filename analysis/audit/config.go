package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/seqchat/seqchat/internal/chstore"
)

// Config says what to audit and how much detail to keep.
type Config struct {
	// Database holds the messages table. Empty means chstore.DefaultDatabase.
	Database string
	// Conversation limits the audit to one conversation. Empty means all.
	Conversation string
	// Since limits the audit to the conversations that have a row sequenced
	// or inserted at or after it (to the second); their whole history is
	// audited. Zero means no limit.
	Since time.Time
	// MaxConversations caps the conversations listed in the report; the
	// totals still count every one. Zero means 1000.
	MaxConversations int
	// MaxDetails caps each list of a listed conversation (missing ranges,
	// conflicting seqs, reused client_msg_ids and the seqs of each, clock
	// regressions); the counts beside the lists stay exact. Zero means 20.
	MaxDetails int
	// SpillBytes is how much memory ClickHouse may use for the audit's sort
	// and GROUP BY before it spills them to disk
	// (max_bytes_before_external_sort and _group_by). Zero means 1 GiB.
	SpillBytes int
}

// Defaults of Config.
const (
	DefaultMaxConversations = 1000
	DefaultMaxDetails       = 20
	DefaultSpillBytes       = 1 << 30
)

func (c *Config) setDefaults() {
	if c.Database == "" {
		c.Database = chstore.DefaultDatabase
	}
	if c.MaxConversations == 0 {
		c.MaxConversations = DefaultMaxConversations
	}
	if c.MaxDetails == 0 {
		c.MaxDetails = DefaultMaxDetails
	}
	if c.SpillBytes == 0 {
		c.SpillBytes = DefaultSpillBytes
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := chstore.CheckDatabase(c.Database); err != nil {
		return err
	}
	if c.MaxConversations < 0 || c.MaxDetails < 0 || c.SpillBytes < 0 {
		return errors.New("audit: MaxConversations, MaxDetails and SpillBytes must not be negative")
	}
	if !c.Since.IsZero() && c.Since.Before(time.Unix(0, 0)) {
		return fmt.Errorf("audit: since %s is before 1970", c.Since.Format(time.RFC3339))
	}
	return nil
}
