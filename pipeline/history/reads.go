package history

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// readColumns are the columns of read_positions a sink writes.
const readColumns = "conversation_id, user_id, epoch, read_seq, device_id, sequenced_at_ms"

// statesPerQuery bounds the conversations one query of
// ConversationStates covers; a user with more gets more queries.
const statesPerQuery = 100

// InsertReads writes read receipts in one batch; writing one again is
// harmless (reads take the highest position).
func (s *Store) InsertReads(ctx context.Context, reads []ReadRow) error {
	if len(reads) == 0 {
		return nil
	}
	table := s.sibling("read_positions")
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+readColumns+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	defer func() {
		if !batch.IsSent() {
			batch.Abort()
		}
	}()
	for _, r := range reads {
		if err := batch.Append(r.ConversationID, r.UserID, r.Epoch, r.ReadSeq, r.DeviceID, r.SequencedAtMs); err != nil {
			return fmt.Errorf("insert into %s: %s/%s: %w", table, r.ConversationID, r.UserID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

// ReadPositions returns the read position of every user of conv who ever
// marked it, in the conversation's current stream (its largest epoch).
func (s *Store) ReadPositions(ctx context.Context, conv string) (map[string]uint64, error) {
	return s.maxReadSeq(ctx, "user_id", "conversation_id = ? AND epoch = (SELECT max(epoch) FROM "+s.table+
		" WHERE conversation_id = ?)", conv, conv)
}

// userReadPositions is user's read position in each conversation's
// stream of the given epoch, where it has one.
func (s *Store) userReadPositions(ctx context.Context, epochs map[string]uint64, user string) (map[string]uint64, error) {
	var args []any
	for conv, e := range epochs {
		args = append(args, conv, e)
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(epochs)), ", ") + ")"
	return s.maxReadSeq(ctx, "conversation_id", "(conversation_id, epoch) IN "+in+" AND user_id = ?", append(args, user)...)
}

// maxReadSeq is max(read_seq) of read_positions by the column by, over
// the rows where (read positions only grow: the highest is the one).
func (s *Store) maxReadSeq(ctx context.Context, by, where string, args ...any) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+by+", max(read_seq) FROM "+s.sibling("read_positions")+" WHERE "+where+" GROUP BY "+by, args...)
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var key string
		var seq uint64
		if err := rows.Scan(&key, &seq); err != nil {
			return nil, fmt.Errorf("read positions: %w", err)
		}
		out[key] = seq
	}
	return out, rows.Err()
}

// ConversationState is one conversation of a user's list.
type ConversationState struct {
	ConversationID string
	// LastSeq is the last seq the user may see (its membership periods,
	// up to what history holds whole).
	LastSeq uint64
	// ReadSeq is the user's read position (0: never marked).
	ReadSeq uint64
	// Unread counts the chat messages by other users after ReadSeq in the
	// user's periods, up to LastSeq.
	Unread uint64
}

// ConversationStates lists every conversation user belongs or belonged
// to, by id, with its last seq, the user's read position and unread count:
// per statesPerQuery conversations, the summaries (two queries), the read
// positions (a key lookup) and one count over the unread ranges.
func (s *Store) ConversationStates(ctx context.Context, user string) ([]ConversationState, error) {
	if r := checkID(user, false); r != "" {
		return nil, invalid("user %q: %s", user, r)
	}
	convs, err := s.Conversations(ctx, user)
	if err != nil {
		return nil, err
	}
	sort.Strings(convs)
	out := make([]ConversationState, 0, len(convs))
	for len(convs) > 0 {
		n := min(len(convs), statesPerQuery)
		states, err := s.conversationStates(ctx, user, convs[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, states...)
		convs = convs[n:]
	}
	return out, nil
}

func (s *Store) conversationStates(ctx context.Context, user string, convs []string) ([]ConversationState, error) {
	sums, err := s.Summaries(ctx, convs, user)
	if err != nil {
		return nil, err
	}
	epochs := make(map[string]uint64, len(convs))
	for _, conv := range convs {
		epochs[conv] = sums[conv].Epoch
	}
	reads, err := s.userReadPositions(ctx, epochs, user)
	if err != nil {
		return nil, err
	}
	var where strings.Builder
	args := []any{user}
	states := make([]ConversationState, 0, len(convs))
	for _, conv := range convs {
		sum := sums[conv]
		_, isDM, reason := parseConversation(conv)
		if reason != "" {
			continue
		}
		periods := []Period{{From: 1, To: Open}}
		if !isDM {
			periods = PeriodsOf(sum.Changes)
		}
		visible := Clip(periods, 0, sum.CompleteUpTo)
		st := ConversationState{ConversationID: conv, ReadSeq: reads[conv]}
		if len(visible) > 0 {
			st.LastSeq = visible[len(visible)-1].To
		}
		states = append(states, st)
		unread := Clip(visible, st.ReadSeq, Open)
		if len(unread) > MaxRangesPerQuery { // the most recent ones: older counts are undercounted
			unread = unread[len(unread)-MaxRangesPerQuery:]
		}
		if len(unread) == 0 {
			continue
		}
		if len(args) > 1 {
			where.WriteString(" OR ")
		}
		args = conversationRanges(&where, args, conv, sum.Epoch, unread)
	}
	if len(args) == 1 {
		return states, nil
	}
	// uniqExact(seq): a row a sink wrote twice counts once (I7).
	rows, err := s.conn.Query(ctx, "SELECT conversation_id, uniqExact(seq) FROM "+s.table+
		" WHERE kind = 'message' AND sender_user_id != ? AND ("+where.String()+") GROUP BY conversation_id", args...)
	if err != nil {
		return nil, fmt.Errorf("unread of %s: %w", user, err)
	}
	defer rows.Close()
	unread := map[string]uint64{}
	for rows.Next() {
		var conv string
		var n uint64
		if err := rows.Scan(&conv, &n); err != nil {
			return nil, fmt.Errorf("unread of %s: %w", user, err)
		}
		unread[conv] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unread of %s: %w", user, err)
	}
	for i := range states {
		states[i].Unread = unread[states[i].ConversationID]
	}
	return states, nil
}
