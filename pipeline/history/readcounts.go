package history

import (
	"context"
	"fmt"
	"strings"
)

// ReadCount is "read by ReadBy of Members" for the chat message at Seq:
// Members are the users who were members at Seq, other than its sender;
// ReadBy those of them whose read position is at or after Seq.
type ReadCount struct {
	Seq     uint64
	Sender  string
	ReadBy  int
	Members int
}

// ReadCounts is one page of ReadCounts, seq ascending.
type ReadCounts struct {
	ConversationID string
	Counts         []ReadCount
	// CompleteUpTo: history holds every seq up to here; NextAfterSeq is
	// the after_seq of the next page (the last seq counted, AfterSeq when
	// none was).
	CompleteUpTo, NextAfterSeq uint64
}

// CountReads fills in, for each message (Seq and Sender set), the members
// at its seq other than its sender (periods: every user's membership
// periods) and those of them whose read position (reads) is at or after
// it. It costs messages times users, both bounded by the caller (a page; a
// group's members).
func CountReads(messages []ReadCount, periods map[string][]Period, reads map[string]uint64) []ReadCount {
	out := make([]ReadCount, len(messages))
	for i, m := range messages {
		c := ReadCount{Seq: m.Seq, Sender: m.Sender}
		for u, ps := range periods {
			if u == m.Sender || !Contains(ps, m.Seq) {
				continue
			}
			c.Members++
			if reads[u] >= m.Seq {
				c.ReadBy++
			}
		}
		out[i] = c
	}
	return out
}

// ReadCountsOf answers "read by k of n" for the chat messages of
// req.ConversationID after req.AfterSeq (at most req.Limit of them) that
// req.User may see (its membership periods, I8): not_member for anyone
// who never was a member, not_found for a group history holds nothing of.
// Five key-range queries whatever the group's size: the user's summary,
// the conversation's membership events, the messages, the read positions.
func ReadCountsOf(ctx context.Context, s *Store, req ReadRequest) (ReadCounts, error) {
	if req.Limit == 0 {
		req.Limit = DefaultLimit
	}
	dm, isDM, err := checkRequest(req)
	if err != nil {
		return ReadCounts{}, err
	}
	if isDM && req.User != dm[0] && req.User != dm[1] {
		return ReadCounts{}, &Error{CodeNotMember, fmt.Sprintf("%s is not one of the users of %s", req.User, req.ConversationID)}
	}
	conv := req.ConversationID
	sum, err := s.Summary(ctx, conv, req.User)
	if err != nil {
		return ReadCounts{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	periods := map[string][]Period{}
	if isDM {
		periods[dm[0]] = []Period{{From: 1, To: Open}}
		periods[dm[1]] = []Period{{From: 1, To: Open}}
	} else {
		if !sum.Found {
			return ReadCounts{}, &Error{CodeNotFound, fmt.Sprintf("history holds nothing of %s", conv)}
		}
		if periods, err = s.allPeriods(ctx, conv, sum.Epoch); err != nil {
			return ReadCounts{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if len(periods[req.User]) == 0 {
			return ReadCounts{}, &Error{CodeNotMember, fmt.Sprintf("%s was never a member of %s", req.User, conv)}
		}
	}
	out := ReadCounts{ConversationID: conv, CompleteUpTo: sum.CompleteUpTo, NextAfterSeq: req.AfterSeq, Counts: []ReadCount{}}
	ranges := Clip(periods[req.User], req.AfterSeq, sum.CompleteUpTo)
	if len(ranges) > MaxRangesPerQuery {
		ranges = ranges[:MaxRangesPerQuery]
	}
	if len(ranges) == 0 {
		return out, nil
	}
	msgs, err := s.messagesIn(ctx, conv, sum.Epoch, ranges, req.Limit)
	if err != nil {
		return ReadCounts{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(msgs) == 0 {
		return out, nil
	}
	reads, err := s.ReadPositions(ctx, conv)
	if err != nil {
		return ReadCounts{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out.Counts = CountReads(msgs, periods, reads)
	out.NextAfterSeq = msgs[len(msgs)-1].Seq
	return out, nil
}

// allPeriods reads every user's membership periods in conv.
func (s *Store) allPeriods(ctx context.Context, conv string, epoch uint64) (map[string][]Period, error) {
	// From the messages table, not membership_events: it has the epoch (a
	// stream rebuilt from nothing reuses seqs).
	rows, err := s.conn.Query(ctx, "SELECT user_id, seq, toString(kind) FROM "+s.table+" ARRAY JOIN member_user_ids AS user_id"+
		" WHERE conversation_id = ? AND epoch = ? AND kind IN ('created', 'joined', 'left', 'kicked')", conv, epoch)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", conv, err)
	}
	defer rows.Close()
	changes := map[string][]Change{}
	for rows.Next() {
		var user, kind string
		var c Change
		if err := rows.Scan(&user, &c.Seq, &kind); err != nil {
			return nil, fmt.Errorf("members of %s: %w", conv, err)
		}
		c.Kind = Kind(kind)
		changes[user] = append(changes[user], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("members of %s: %w", conv, err)
	}
	out := make(map[string][]Period, len(changes))
	for u, cs := range changes {
		out[u] = PeriodsOf(cs)
	}
	return out, nil
}

// messagesIn reads the seq and sender of the first limit chat messages of
// conv in ranges, each once.
func (s *Store) messagesIn(ctx context.Context, conv string, epoch uint64, ranges []Period, limit int) ([]ReadCount, error) {
	var where strings.Builder
	args := conversationRanges(&where, nil, conv, epoch, ranges)
	rows, err := s.conn.Query(ctx, "SELECT seq, sender_user_id FROM "+s.table+" WHERE kind = 'message' AND "+
		where.String()+" ORDER BY seq LIMIT 1 BY seq LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", conv, err)
	}
	defer rows.Close()
	var out []ReadCount
	for rows.Next() {
		var m ReadCount
		if err := rows.Scan(&m.Seq, &m.Sender); err != nil {
			return nil, fmt.Errorf("messages of %s: %w", conv, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
