package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Auditor scans the history store of one database.
type Auditor struct {
	conn driver.Conn
	cfg  Config
}

// New checks cfg and fills its defaults; conn stays the caller's to close.
func New(conn driver.Conn, cfg Config) (*Auditor, error) {
	if conn == nil {
		return nil, errors.New("audit: nil clickhouse connection")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Auditor{conn: conn, cfg: cfg}, nil
}

// Scan audits the configured conversations. It reads the table in three
// steps: client_msg_ids stored under several seqs (a GROUP BY in
// ClickHouse that returns only the offenders), then every row's
// (conversation, seq, identity, sequenced_at_ms) in order, checked as it
// streams by, then the rows of the conflicting seqs it lists. A live table
// is fine: each step reads a consistent snapshot, and a gap right at a
// conversation's head may be a batch the sink has yet to insert.
func (a *Auditor) Scan(ctx context.Context) (*Report, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_bytes_before_external_sort":     a.cfg.SpillBytes,
		"max_bytes_before_external_group_by": a.cfg.SpillBytes,
	}))
	rep := &Report{Database: a.cfg.Database, Conversation: a.cfg.Conversation, Conversations: []ConversationReport{}}
	if !a.cfg.Since.IsZero() {
		rep.Since = a.cfg.Since.UTC().Truncate(time.Second)
	}
	reused, err := a.reusedClientMsgIDs(ctx, rep)
	if err != nil {
		return nil, err
	}
	conflicts := map[string][]uint64{} // listed conversation -> its conflicting seqs
	list := func(c *ConversationReport, seqs []uint64) {
		rep.Totals.AnomalousConversations++
		if len(rep.Conversations) >= a.cfg.MaxConversations {
			rep.OmittedConversations++
			return
		}
		rep.Conversations = append(rep.Conversations, *c)
		if len(seqs) > 0 {
			conflicts[c.ConversationID] = seqs
		}
	}
	chk := &checker{maxDetails: a.cfg.MaxDetails, done: func(c *ConversationReport, seqs []uint64) {
		t := &rep.Totals
		t.Conversations++
		t.Rows += c.Rows
		t.Entries += c.Entries
		t.PendingDuplicates += c.PendingDuplicates
		t.MissingSeqs += c.MissingSeqs
		t.ConflictingSeqs += c.ConflictingSeqs
		t.ClockRegressions += c.ClockRegressions
		if r, ok := reused[c.ConversationID]; ok {
			c.ReusedClientMsgIDs, c.Reused = r.ReusedClientMsgIDs, r.Reused
			delete(reused, c.ConversationID)
		}
		if c.Anomalies() > 0 {
			list(c, seqs)
		}
	}}
	if err := a.stream(ctx, chk); err != nil {
		return nil, err
	}
	// Offenders whose rows the stream no longer saw (the table changed in
	// between): list what is known of them.
	for _, id := range sortedKeys(reused) {
		list(reused[id], nil)
	}
	sort.Slice(rep.Conversations, func(i, j int) bool {
		return rep.Conversations[i].ConversationID < rep.Conversations[j].ConversationID
	})
	for i := range rep.Conversations {
		c := &rep.Conversations[i]
		if seqs := conflicts[c.ConversationID]; len(seqs) > 0 {
			if c.Conflicts, err = a.conflictDetails(ctx, c.ConversationID, seqs); err != nil {
				return nil, err
			}
		}
	}
	return rep, nil
}

// filter is the WHERE condition selecting the audited conversations.
func (a *Auditor) filter() (string, []any) {
	conds, args := []string{"seq > 0"}, []any{}
	if a.cfg.Conversation != "" {
		conds = append(conds, "conversation_id = ?")
		args = append(args, a.cfg.Conversation)
	}
	if !a.cfg.Since.IsZero() {
		since := a.cfg.Since.UTC().Format(time.DateTime)
		conds = append(conds, "conversation_id IN (SELECT conversation_id FROM "+a.cfg.Database+".messages "+
			"WHERE inserted_at >= toDateTime(?, 'UTC') OR sequenced_at >= toDateTime(?, 'UTC'))")
		args = append(args, since, since)
	}
	return strings.Join(conds, " AND "), args
}

// stream feeds every audited row to chk in (conversation, seq, identity)
// order. ClickHouse sorts (spilling to disk past SpillBytes; a current
// server reads in key order instead); the client holds one block at a time.
func (a *Auditor) stream(ctx context.Context, chk *checker) error {
	where, args := a.filter()
	rows, err := a.conn.Query(ctx, "SELECT conversation_id, seq, "+
		"cityHash64(msg_id, sender_user_id, sender_device_id, client_msg_id) AS entry_hash, sequenced_at_ms "+
		"FROM "+a.cfg.Database+".messages WHERE "+where+" "+
		"ORDER BY conversation_id, seq, entry_hash, sequenced_at_ms", args...)
	if err != nil {
		return fmt.Errorf("audit: read history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.conv, &r.seq, &r.identity, &r.sequencedAtMs); err != nil {
			return fmt.Errorf("audit: read history: %w", err)
		}
		if err := chk.add(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read history: %w", err)
	}
	chk.flush()
	return nil
}

// reusedClientMsgIDs finds the I3 violations: a (conversation, sender,
// client_msg_id) stored under more than one seq. It counts them all in
// rep.Totals and keeps details for at most MaxConversations conversations.
func (a *Auditor) reusedClientMsgIDs(ctx context.Context, rep *Report) (map[string]*ConversationReport, error) {
	where, args := a.filter()
	rows, err := a.conn.Query(ctx, "SELECT conversation_id, sender_user_id, client_msg_id, "+
		"arraySort(groupUniqArray(seq)) AS seqs "+
		"FROM "+a.cfg.Database+".messages WHERE "+where+" AND client_msg_id != '' "+
		"GROUP BY conversation_id, sender_user_id, client_msg_id HAVING length(seqs) > 1 "+
		"ORDER BY conversation_id, sender_user_id, client_msg_id", args...)
	if err != nil {
		return nil, fmt.Errorf("audit: find reused client_msg_ids: %w", err)
	}
	defer rows.Close()
	out := map[string]*ConversationReport{}
	for rows.Next() {
		var (
			conv string
			r    ReusedClientMsgID
		)
		if err := rows.Scan(&conv, &r.SenderUserID, &r.ClientMsgID, &r.Seqs); err != nil {
			return nil, fmt.Errorf("audit: find reused client_msg_ids: %w", err)
		}
		rep.Totals.ReusedClientMsgIDs++
		c, ok := out[conv]
		if !ok {
			if len(out) >= a.cfg.MaxConversations {
				rep.Incomplete = true // counted, but too many conversations to keep
				continue
			}
			c = &ConversationReport{ConversationID: conv}
			out[conv] = c
		}
		c.ReusedClientMsgIDs++
		if len(c.Reused) < a.cfg.MaxDetails {
			r.SeqCount = uint64(len(r.Seqs))
			r.Seqs = r.Seqs[:min(len(r.Seqs), a.cfg.MaxDetails)]
			c.Reused = append(c.Reused, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: find reused client_msg_ids: %w", err)
	}
	return out, nil
}

// conflictDetails reads the distinct entries of the conflicting seqs of one
// conversation.
func (a *Auditor) conflictDetails(ctx context.Context, conv string, seqs []uint64) ([]Conflict, error) {
	rows, err := a.conn.Query(ctx, "SELECT seq, msg_id, sender_user_id, sender_device_id, client_msg_id, count() AS copies "+
		"FROM "+a.cfg.Database+".messages WHERE conversation_id = ? AND has(?, seq) "+
		"GROUP BY seq, msg_id, sender_user_id, sender_device_id, client_msg_id "+
		"ORDER BY seq, msg_id, sender_user_id, sender_device_id, client_msg_id", conv, seqs)
	if err != nil {
		return nil, fmt.Errorf("audit: read conflicting entries of %s: %w", conv, err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var (
			seq uint64
			e   ConflictEntry
		)
		if err := rows.Scan(&seq, &e.MsgID, &e.SenderUserID, &e.SenderDeviceID, &e.ClientMsgID, &e.Rows); err != nil {
			return nil, fmt.Errorf("audit: read conflicting entries of %s: %w", conv, err)
		}
		if len(out) == 0 || out[len(out)-1].Seq != seq {
			out = append(out, Conflict{Seq: seq})
		}
		last := &out[len(out)-1]
		last.Entries = append(last.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read conflicting entries of %s: %w", conv, err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
