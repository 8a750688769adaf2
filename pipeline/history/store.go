package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// columns are the columns a sink writes, in Row's order. The list is
// explicit: ClickHouse 18.16 refuses a batch insert without one, and
// sequenced_at / inserted_at take their DEFAULTs.
const columns = "conversation_id, seq, msg_id, client_msg_id, sender_user_id, sender_device_id, client_seq, " +
	"kind, member_user_ids, title, content_type, body, predecessor_missing, received_at_ms, sequenced_at_ms, target_seq, epoch"

// MaxRangesPerQuery bounds the seq ranges (membership periods) one Entries
// query filters on, so a user who joined and left a thousand times still
// gets a query of bounded size; Read pages over the rest.
const MaxRangesPerQuery = 64

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
	if err := chstore.CheckDatabase(database); err != nil {
		return nil, fmt.Errorf("history store: %w", err)
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
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		s, err := openOnce(ctx, cfg)
		if err == nil {
			return s, nil
		}
		log.Warn("clickhouse not ready; retrying", "addr", cfg.Addr, "err", err, "backoff", b.Next())
		if !b.Wait(ctx) {
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
			string(r.Kind), r.MemberUserIDs, r.Title, r.ContentType, r.Body, r.PredecessorMissing, r.ReceivedAtMs, r.SequencedAtMs, r.TargetSeq, r.Epoch); err != nil {
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
	// Epoch is the conversation's current epoch: the largest of its rows.
	// Everything else of the summary is of that epoch only, and so are the
	// reads that follow it: a stream rebuilt from nothing reuses seqs.
	Epoch uint64
	// CompleteUpTo is the highest h such that the table holds every seq 1..h.
	CompleteUpTo uint64
	// Changes are the membership events that name the user, by seq (a row
	// written twice may appear twice: PeriodsOf ignores repeats).
	Changes []Change
	// LastRevised is the highest seq an edit or recall revises (0: none):
	// a page after it needs no look for revisions.
	LastRevised uint64
}

// Summary reads the membership changes of user (a key lookup in
// membership_events) and how far the conversation's history is complete
// (its seq column only). Completeness is from seq 1, not from where the
// caller is: a hole below it could be the user's leave, not written yet.
// Dedup-safe: uniqExact counts a duplicated seq once.
func (s *Store) Summary(ctx context.Context, conv, user string) (Summary, error) {
	sums, err := s.Summaries(ctx, []string{conv}, user)
	return sums[conv], err
}

// Summaries is Summary for several conversations of one user in two
// queries (a reconnecting device catches up all its conversations at once).
func (s *Store) Summaries(ctx context.Context, convs []string, user string) (map[string]Summary, error) {
	sums := make(map[string]Summary, len(convs))
	if len(convs) == 0 {
		return sums, nil
	}
	in, args := inList(convs)
	// The current epoch of each conversation first: the other queries
	// filter to it.
	rows, err := s.conn.Query(ctx, "SELECT conversation_id, max(epoch) FROM "+s.table+
		" WHERE conversation_id IN "+in+" GROUP BY conversation_id", args...)
	if err != nil {
		return nil, fmt.Errorf("epochs: %w", err)
	}
	var current []any // conversation_id, epoch, ...
	for rows.Next() {
		var (
			conv  string
			epoch uint64
		)
		if err := rows.Scan(&conv, &epoch); err != nil {
			rows.Close()
			return nil, fmt.Errorf("epochs: %w", err)
		}
		sums[conv] = Summary{Found: true, Epoch: epoch}
		current = append(current, conv, epoch)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("epochs: %w", err)
	}
	if len(current) == 0 {
		return sums, nil
	}
	inEpoch := "(conversation_id, epoch) IN (" + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(current)/2), ", ") + ")"
	// membership_events has no epoch: its rows name the seqs (a key lookup),
	// and the rows of messages at those seqs of the current epoch confirm
	// them (an older epoch's event at a seq the new one reused does not).
	rows, err = s.conn.Query(ctx, "SELECT conversation_id, seq, toString(kind) FROM "+s.table+" WHERE "+inEpoch+
		" AND (conversation_id, seq) IN (SELECT conversation_id, seq FROM "+s.sibling("membership_events")+
		" WHERE conversation_id IN "+in+" AND user_id = ?) AND has(member_user_ids, ?)",
		append(append(append([]any{}, current...), args...), user, user)...)
	if err != nil {
		return nil, fmt.Errorf("membership of %s: %w", user, err)
	}
	for rows.Next() {
		var (
			conv, kind string
			c          Change
		)
		if err := rows.Scan(&conv, &c.Seq, &kind); err != nil {
			rows.Close()
			return nil, fmt.Errorf("membership of %s: %w", user, err)
		}
		c.Kind = Kind(kind)
		sum := sums[conv]
		sum.Changes = append(sum.Changes, c)
		sums[conv] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("membership of %s: %w", user, err)
	}
	rows, err = s.conn.Query(ctx, "SELECT conversation_id, uniqExact(seq), max(seq), max(target_seq) FROM "+s.table+
		" WHERE "+inEpoch+" GROUP BY conversation_id", current...)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	gapped := map[string]bool{}
	for rows.Next() {
		var (
			conv                    string
			distinct, last, revised uint64
		)
		if err := rows.Scan(&conv, &distinct, &last, &revised); err != nil {
			rows.Close()
			return nil, fmt.Errorf("summary: %w", err)
		}
		sum := sums[conv]
		sum.Found, sum.CompleteUpTo, sum.LastRevised = distinct > 0, last, revised
		sums[conv] = sum
		gapped[conv] = distinct != last
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	for conv, sum := range sums {
		sort.Slice(sum.Changes, func(a, b int) bool { return sum.Changes[a].Seq < sum.Changes[b].Seq })
		if gapped[conv] {
			h, err := s.firstGap(ctx, conv, sum.Epoch)
			if err != nil {
				return nil, err
			}
			sum.CompleteUpTo = h
		}
		sums[conv] = sum
	}
	return sums, nil
}

// inList is "(?, ?, …)" for the values and the values as arguments.
func inList(values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + ")", args
}

// firstGap is the highest h with every seq 1..h present, for a conversation
// known to have a gap: the first seq that is not its position in the sorted
// set of seqs, less one.
func (s *Store) firstGap(ctx context.Context, conv string, epoch uint64) (uint64, error) {
	var (
		firstGap uint32 // arrayFirstIndex's type
		distinct uint64
	)
	if err := s.conn.QueryRow(ctx, "SELECT arrayFirstIndex((x, i) -> x != i, s, arrayEnumerate(s)), length(s) FROM "+
		"(SELECT arraySort(groupUniqArray(seq)) AS s FROM "+s.table+" WHERE conversation_id = ? AND epoch = ?)", conv, epoch).
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

// Ranges are the seqs to read of one conversation's stream of one epoch.
type Ranges struct {
	Epoch   uint64
	Periods []Period
}

// Entries reads at most limit entries of conv's stream of epoch whose seq
// lies in one of ranges (closed periods, at most MaxRangesPerQuery), by
// seq, each once.
func (s *Store) Entries(ctx context.Context, conv string, epoch uint64, ranges []Period, limit int) ([]Row, error) {
	rows, err := s.EntriesOf(ctx, map[string]Ranges{conv: {Epoch: epoch, Periods: ranges}}, limit)
	return rows[conv], err
}

// EntriesOf is Entries for several conversations in one query: at most
// limit entries of each, by seq, each once.
func (s *Store) EntriesOf(ctx context.Context, ranges map[string]Ranges, limit int) (map[string][]Row, error) {
	out := map[string][]Row{}
	if limit <= 0 {
		return out, nil
	}
	var where strings.Builder
	var args []any
	for conv, rr := range ranges {
		rs := rr.Periods
		if len(rs) == 0 {
			continue
		}
		if len(rs) > MaxRangesPerQuery {
			return nil, fmt.Errorf("entries of %s: %d ranges, at most %d", conv, len(rs), MaxRangesPerQuery)
		}
		if len(args) > 0 {
			where.WriteString(" OR ")
		}
		args = conversationRanges(&where, args, conv, rr.Epoch, rs)
	}
	if len(args) == 0 {
		return out, nil
	}
	args = append(args, limit)
	// LIMIT 1 BY drops the duplicate rows a sink writes after a crash (I7);
	// the outer LIMIT BY bounds each conversation's page.
	return s.scanRows(ctx, "entries", "SELECT "+columns+" FROM (SELECT "+columns+" FROM "+s.table+" WHERE "+where.String()+
		" ORDER BY conversation_id, seq LIMIT 1 BY conversation_id, seq) ORDER BY conversation_id, seq LIMIT ? BY conversation_id", args...)
}

// conversationRanges writes "(conversation_id = ? AND epoch = ? AND (seq
// ranges))" for conv's stream of epoch and rs (at least one) to where and
// returns args with its values.
func conversationRanges(where *strings.Builder, args []any, conv string, epoch uint64, rs []Period) []any {
	where.WriteString("(conversation_id = ? AND epoch = ? AND (")
	args = append(args, conv, epoch)
	for i, p := range rs {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(seq >= ? AND seq <= ?)")
		args = append(args, p.From, p.To)
	}
	where.WriteString("))")
	return args
}

// Span is the seqs First..Last of one conversation's stream of Epoch.
type Span struct{ First, Last, Epoch uint64 }

// RevisionsOf reads the revisions (edits, recalls) of the messages with
// seqs in each conversation's span, by seq, each once. A revision comes at
// most imv1.RevisionReach seqs after its message (the sequencer refuses
// others), so the read stays within the table's key range.
func (s *Store) RevisionsOf(ctx context.Context, spans map[string]Span) (map[string][]Row, error) {
	var where strings.Builder
	var args []any
	for conv, sp := range spans {
		if len(args) > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(conversation_id = ? AND epoch = ? AND seq > ? AND seq <= ? AND target_seq >= ? AND target_seq <= ?)")
		args = append(args, conv, sp.Epoch, sp.First, sp.Last+imv1.RevisionReach, sp.First, sp.Last)
	}
	if len(args) == 0 {
		return map[string][]Row{}, nil
	}
	return s.scanRows(ctx, "revisions", "SELECT "+columns+" FROM "+s.table+" WHERE ("+where.String()+
		") AND kind IN ('edit', 'recall') ORDER BY conversation_id, seq LIMIT 1 BY conversation_id, seq", args...)
}

// scanRows runs a query of columns and groups its rows by conversation.
func (s *Store) scanRows(ctx context.Context, what, query string, args ...any) (map[string][]Row, error) {
	out := map[string][]Row{}
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r    Row
			kind string
			pm   uint8
		)
		if err := rows.Scan(&r.ConversationID, &r.Seq, &r.MsgID, &r.ClientMsgID, &r.SenderUserID, &r.SenderDeviceID, &r.ClientSeq,
			&kind, &r.MemberUserIDs, &r.Title, &r.ContentType, &r.Body, &pm, &r.ReceivedAtMs, &r.SequencedAtMs, &r.TargetSeq, &r.Epoch); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		r.Kind, r.PredecessorMissing = Kind(kind), pm != 0
		out[r.ConversationID] = append(out[r.ConversationID], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
