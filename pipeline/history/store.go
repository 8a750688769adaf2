package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/pipeline/chstore"
)

// columns are the columns a sink writes, in Row's order. The list is
// explicit: ClickHouse 18.16 refuses a batch insert without one, and
// sequenced_at / inserted_at take their DEFAULTs.
const columns = "conversation_id, seq, msg_id, client_msg_id, sender_user_id, sender_device_id, client_seq, " +
	"kind, member_user_ids, title, content_type, body, predecessor_missing, received_at_ms, sequenced_at_ms"

// MaxRangesPerQuery bounds the seq ranges (membership periods) one Entries
// query filters on, so a user who joined and left a thousand times still
// gets a query of bounded size; Read pages over the rest.
const MaxRangesPerQuery = 64

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Store is every query of the history table <database>.messages. Reads are
// dedup-safe: a sink that crashed between insert and commit writes rows
// twice, and ReplacingMergeTree collapses them only eventually (I7).
type Store struct {
	conn  driver.Conn
	table string
	owned bool // Close closes conn
}

// NewStore uses conn (the caller keeps closing it) and database, which must
// be migrated (chstore.Migrate).
func NewStore(conn driver.Conn, database string) (*Store, error) {
	if conn == nil {
		return nil, errors.New("history store: no connection")
	}
	if !identifier.MatchString(database) {
		return nil, fmt.Errorf("history store: database %q: want letters, digits and underscores", database)
	}
	return &Store{conn: conn, table: database + ".messages"}, nil
}

// OpenStore connects to ClickHouse and applies the migrations (idempotent),
// waiting with a bounded backoff while the server is unreachable, until ctx
// ends: a service started before its ClickHouse comes up once it does.
func OpenStore(ctx context.Context, cfg chstore.Config, log *slog.Logger) (*Store, error) {
	if cfg.Database == "" {
		cfg.Database = chstore.DefaultDatabase
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		s, err := openOnce(ctx, cfg)
		if err == nil {
			return s, nil
		}
		log.Warn("clickhouse not ready; retrying", "addr", cfg.Addr, "err", err, "backoff", b.next)
		if !b.wait(ctx) {
			return nil, fmt.Errorf("history store: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

func openOnce(ctx context.Context, cfg chstore.Config) (*Store, error) {
	conn, cfg, err := chstore.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := chstore.Migrate(ctx, conn, cfg.Database); err != nil {
		conn.Close()
		return nil, err
	}
	s, err := NewStore(conn, cfg.Database)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Close closes the connection if OpenStore opened it.
func (s *Store) Close() error {
	if s.owned {
		return s.conn.Close()
	}
	return nil
}

// Ping checks that ClickHouse answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse ping: %w", err)
	}
	return nil
}

// Insert writes rows in one batch. A failed insert may still have written
// some of them: inserting the same rows again is safe (I7).
func (s *Store) Insert(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", s.table, err)
	}
	defer func() {
		if !batch.IsSent() {
			batch.Abort() // give the connection back
		}
	}()
	for _, r := range rows {
		if err := batch.Append(r.ConversationID, r.Seq, r.MsgID, r.ClientMsgID, r.SenderUserID, r.SenderDeviceID, r.ClientSeq,
			string(r.Kind), r.MemberUserIDs, r.Title, r.ContentType, r.Body, r.PredecessorMissing, r.ReceivedAtMs, r.SequencedAtMs); err != nil {
			return fmt.Errorf("insert into %s: %s seq %d: %w", s.table, r.ConversationID, r.Seq, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", s.table, err)
	}
	return nil
}

// Summary is what a read needs to know of a conversation before reading
// its entries.
type Summary struct {
	// Found is false when the table holds no row of the conversation.
	Found bool
	// CompleteUpTo is the highest h such that the table holds every seq 1..h.
	CompleteUpTo uint64
	// Changes are the membership events that name the user, by seq (a row
	// written twice may appear twice: PeriodsOf ignores repeats).
	Changes []Change
}

// Summary reads the membership changes of user (a key lookup in
// membership_events) and how far the conversation's history is complete
// (its seq column only). Completeness is from seq 1, not from where the
// caller is: a hole below it could be the user's leave, not written yet.
// Dedup-safe: uniqExact counts a duplicated seq once.
func (s *Store) Summary(ctx context.Context, conv, user string) (Summary, error) {
	var sum Summary
	rows, err := s.conn.Query(ctx, "SELECT seq, toString(kind) FROM "+s.sibling("membership_events")+
		" WHERE conversation_id = ? AND user_id = ?", conv, user)
	if err != nil {
		return sum, fmt.Errorf("membership of %s in %s: %w", user, conv, err)
	}
	for rows.Next() {
		var c Change
		var kind string
		if err := rows.Scan(&c.Seq, &kind); err != nil {
			rows.Close()
			return sum, fmt.Errorf("membership of %s in %s: %w", user, conv, err)
		}
		c.Kind = Kind(kind)
		sum.Changes = append(sum.Changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("membership of %s in %s: %w", user, conv, err)
	}
	sort.Slice(sum.Changes, func(a, b int) bool { return sum.Changes[a].Seq < sum.Changes[b].Seq })

	var distinct, last uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(seq), max(seq) FROM "+s.table+" WHERE conversation_id = ?", conv).
		Scan(&distinct, &last); err != nil {
		return sum, fmt.Errorf("summary of %s: %w", conv, err)
	}
	sum.Found, sum.CompleteUpTo = distinct > 0, last
	if distinct != last {
		h, err := s.firstGap(ctx, conv)
		if err != nil {
			return sum, err
		}
		sum.CompleteUpTo = h
	}
	return sum, nil
}

// firstGap is the highest h with every seq 1..h present, for a conversation
// known to have a gap: the first seq that is not its position in the sorted
// set of seqs, less one.
func (s *Store) firstGap(ctx context.Context, conv string) (uint64, error) {
	var (
		firstGap uint32 // arrayFirstIndex's type
		distinct uint64
	)
	if err := s.conn.QueryRow(ctx, "SELECT arrayFirstIndex((x, i) -> x != i, s, arrayEnumerate(s)), length(s) FROM "+
		"(SELECT arraySort(groupUniqArray(seq)) AS s FROM "+s.table+" WHERE conversation_id = ?)", conv).
		Scan(&firstGap, &distinct); err != nil {
		return 0, fmt.Errorf("complete_up_to of %s: %w", conv, err)
	}
	if firstGap == 0 { // rows arrived since the summary and closed the gap
		return distinct, nil
	}
	return uint64(firstGap) - 1, nil
}

// sibling is the name of another table of the store's database.
func (s *Store) sibling(table string) string {
	db, _, _ := strings.Cut(s.table, ".")
	return db + "." + table
}

// Entries reads at most limit entries of conv whose seq lies in one of
// ranges (closed periods, at most MaxRangesPerQuery), by seq, each once.
func (s *Store) Entries(ctx context.Context, conv string, ranges []Period, limit int) ([]Row, error) {
	if len(ranges) == 0 || limit <= 0 {
		return nil, nil
	}
	if len(ranges) > MaxRangesPerQuery {
		return nil, fmt.Errorf("entries of %s: %d ranges, at most %d", conv, len(ranges), MaxRangesPerQuery)
	}
	var where strings.Builder
	args := []any{conv}
	for i, p := range ranges {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(seq >= ? AND seq <= ?)")
		args = append(args, p.From, p.To)
	}
	args = append(args, limit)
	rows, err := s.conn.Query(ctx, "SELECT "+columns+" FROM "+s.table+" WHERE conversation_id = ? AND ("+where.String()+
		") ORDER BY seq LIMIT 1 BY seq LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("entries of %s: %w", conv, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var (
			r    Row
			kind string
			pm   uint8
		)
		if err := rows.Scan(&r.ConversationID, &r.Seq, &r.MsgID, &r.ClientMsgID, &r.SenderUserID, &r.SenderDeviceID, &r.ClientSeq,
			&kind, &r.MemberUserIDs, &r.Title, &r.ContentType, &r.Body, &pm, &r.ReceivedAtMs, &r.SequencedAtMs); err != nil {
			return nil, fmt.Errorf("entries of %s: %w", conv, err)
		}
		r.Kind, r.PredecessorMissing = Kind(kind), pm != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("entries of %s: %w", conv, err)
	}
	return out, nil
}
