package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Limits of ReadRequest.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// maxIDBytes bounds user and conversation ids, as ingest does.
const maxIDBytes = 128

// Stable codes of refused reads (docs/history-api.md).
const (
	CodeInvalid     = "invalid"
	CodeNotMember   = "not_member"
	CodeNotFound    = "not_found"
	CodeUnavailable = "unavailable"
	// CodeUnknownConversation: the group was never created (HandlerConfig.Progress).
	CodeUnknownConversation = "unknown_conversation"
)

// Error is a read refused with a stable Code and a human Message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrUnavailable wraps the store's failures: ClickHouse did not answer.
var ErrUnavailable = errors.New("history store unavailable")

// ReadRequest asks for the entries of a conversation after AfterSeq, on
// behalf of User.
type ReadRequest struct {
	ConversationID string
	User           string
	AfterSeq       uint64
	// Limit is 1..MaxLimit; zero means DefaultLimit.
	Limit int
}

// Page is one answer of Read.
type Page struct {
	ConversationID string
	// Epoch of the conversation's stream the page is of: its current one
	// (a stream rebuilt from nothing restarts at seq 1 under a larger
	// epoch; a reader holding another epoch's seqs must start afresh).
	Epoch uint64
	// Entries visible to the user, seq ascending, all at most CompleteUpTo.
	Entries []Row
	// CompleteUpTo is the highest h such that history holds every seq 1..h.
	CompleteUpTo uint64
	// NextAfterSeq is the AfterSeq of the next page: the last seq returned,
	// AfterSeq when none was.
	NextAfterSeq uint64
}

// Read returns the entries of req.ConversationID after req.AfterSeq that
// req.User may see (I8): those in its membership periods, derived from the
// membership rows of the same table (both users of a dm always; anyone else
// never). Only the complete prefix 1..CompleteUpTo is served: past a gap a
// leave may not be written yet, so the periods are known exactly only up to
// there, and a caller paging on never skips an entry written late.
//
// A refusal is an *Error (invalid, not_member, not_found); a store failure
// wraps ErrUnavailable.
func Read(ctx context.Context, s *Store, req ReadRequest) (Page, error) {
	if req.Limit == 0 {
		req.Limit = DefaultLimit
	}
	if _, _, err := checkRequest(req); err != nil {
		return Page{}, err
	}
	pages, refused, err := ReadMany(ctx, s, req.User, map[string]uint64{req.ConversationID: req.AfterSeq}, req.Limit)
	if err != nil {
		return Page{}, err
	}
	if e := refused[req.ConversationID]; e != nil {
		return Page{}, e
	}
	return pages[req.ConversationID], nil
}

// MaxReadMany bounds the conversations of one ReadMany.
const MaxReadMany = 64

// ReadMany is Read for several conversations of one user, each after its
// own seq, all with one limit (the catch-up of a reconnecting device): the
// same pages in three queries instead of three per conversation. A
// conversation refused (invalid, not_member, not_found) is in refused;
// err is for the whole call (an invalid user or limit, too many
// conversations, a store failure wrapping ErrUnavailable).
func ReadMany(ctx context.Context, s *Store, user string, after map[string]uint64, limit int) (pages map[string]Page, refused map[string]*Error, err error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if len(after) > MaxReadMany {
		return nil, nil, invalid("%d conversations, at most %d", len(after), MaxReadMany)
	}
	if err := checkReader(user, limit); err != nil {
		return nil, nil, err
	}
	pages, refused = map[string]Page{}, map[string]*Error{}
	var convs []string
	for conv := range after {
		dm, isDM, reason := parseConversation(conv)
		switch {
		case reason != "":
			refused[conv] = invalid("conversation_id %q: %s", conv, reason)
		case isDM && user != dm[0] && user != dm[1]:
			refused[conv] = &Error{CodeNotMember, fmt.Sprintf("%s is not one of the users of %s", user, conv)}
		default:
			convs = append(convs, conv)
		}
	}
	sums, err := s.Summaries(ctx, convs, user)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ranges := map[string]Ranges{}
	visible := map[string][]Period{} // the user's periods, up to what history holds whole
	revised := map[string]uint64{}   // the highest seq a revision revises
	epochs := map[string]uint64{}
	for _, conv := range convs {
		sum := sums[conv]
		_, isDM, _ := parseConversation(conv)
		periods := []Period{{From: 1, To: Open}}
		if !isDM {
			if !sum.Found {
				refused[conv] = &Error{CodeNotFound, fmt.Sprintf("history holds nothing of %s", conv)}
				continue
			}
			if periods = PeriodsOf(sum.Changes); len(periods) == 0 {
				refused[conv] = &Error{CodeNotMember, fmt.Sprintf("%s was never a member of %s", user, conv)}
				continue
			}
		}
		visible[conv], revised[conv] = Clip(periods, 0, sum.CompleteUpTo), sum.LastRevised
		r := Clip(periods, after[conv], sum.CompleteUpTo)
		if len(r) > MaxRangesPerQuery {
			// Every seq of the ranges is present (they end at h), so the
			// page ends at the last range read and the next page goes on
			// from there.
			r = r[:MaxRangesPerQuery]
		}
		ranges[conv], epochs[conv] = Ranges{Epoch: sum.Epoch, Periods: r}, sum.Epoch
		pages[conv] = Page{ConversationID: conv, Epoch: sum.Epoch, Entries: []Row{}, CompleteUpTo: sum.CompleteUpTo, NextAfterSeq: after[conv]}
	}
	rows, err := s.EntriesOf(ctx, ranges, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := applyRevisions(ctx, s, rows, visible, revised, epochs); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for conv, rs := range rows {
		p := pages[conv]
		p.Entries, p.NextAfterSeq = rs, rs[len(rs)-1].Seq
		pages[conv] = p
	}
	return pages, refused, nil
}

// applyRevisions shows each message of the pages as its revisions left
// it, as a device that applied them in seq order sees it: the latest
// edit's content (Edited), or no content once recalled (Recalled; an edit
// of a recalled message loses its content too). Only revisions the user
// may see (its periods, up to what history holds whole) apply. A page
// whose seqs (and edits' targets) all come after the highest seq any
// revision revises (revised, from the summary) needs no query: a
// conversation never revised costs none.
func applyRevisions(ctx context.Context, s *Store, pages map[string][]Row, visible map[string][]Period, revised, epochs map[string]uint64) error {
	spans := map[string]Span{}
	for conv, rs := range pages {
		sp, ok := Span{}, false
		for _, r := range rs {
			target := r.Seq
			switch r.Kind {
			case KindMessage:
			case KindEdit:
				target = r.TargetSeq
			default:
				continue
			}
			if !ok {
				sp, ok = Span{First: target, Last: r.Seq}, true
			}
			sp.First, sp.Last = min(sp.First, target), max(sp.Last, r.Seq)
		}
		if ok && revised[conv] >= sp.First {
			sp.Epoch = epochs[conv]
			spans[conv] = sp
		}
	}
	if len(spans) == 0 {
		return nil
	}
	revs, err := s.RevisionsOf(ctx, spans)
	if err != nil {
		return err
	}
	for conv, rs := range revs {
		type state struct {
			edit     *Row
			recalled bool
		}
		of := map[uint64]*state{}
		for i := range rs {
			r := &rs[i]
			if !Contains(visible[conv], r.Seq) {
				continue
			}
			st := of[r.TargetSeq]
			if st == nil {
				st = &state{}
				of[r.TargetSeq] = st
			}
			if r.Kind == KindRecall {
				st.recalled = true
			} else {
				st.edit = r
			}
		}
		for i := range pages[conv] {
			r := &pages[conv][i]
			target := r.Seq
			if r.Kind == KindEdit {
				target = r.TargetSeq
			} else if r.Kind != KindMessage {
				continue
			}
			switch st := of[target]; {
			case st == nil:
			case st.recalled:
				r.ContentType, r.Body, r.Recalled = "", "", true
			case r.Kind == KindMessage && st.edit != nil:
				r.ContentType, r.Body, r.Edited = st.edit.ContentType, st.edit.Body, true
			}
		}
	}
	return nil
}

// checkRequest validates req; for a dm it returns its two users.
func checkRequest(req ReadRequest) (dm [2]string, isDM bool, err error) {
	if err := checkReader(req.User, req.Limit); err != nil {
		return dm, false, err
	}
	dm, isDM, reason := parseConversation(req.ConversationID)
	if reason != "" {
		return dm, false, invalid("conversation_id %q: %s", req.ConversationID, reason)
	}
	return dm, isDM, nil
}

// checkReader validates the user and the limit of a read.
func checkReader(user string, limit int) error {
	if limit < 1 || limit > MaxLimit {
		return invalid("limit %d: want 1..%d", limit, MaxLimit)
	}
	if r := checkID(user, false); r != "" {
		return invalid("user %q: %s", user, r)
	}
	return nil
}

func invalid(format string, args ...any) *Error {
	return &Error{CodeInvalid, fmt.Sprintf(format, args...)}
}

// parseConversation checks a conversation id the way ingest does:
// dm:<a>:<b> with a < b, or g:<id>. reason is empty when it is valid.
func parseConversation(id string) (dm [2]string, isDM bool, reason string) {
	if len(id) > maxIDBytes {
		return dm, false, fmt.Sprintf("%d bytes, at most %d", len(id), maxIDBytes)
	}
	if rest, ok := strings.CutPrefix(id, "dm:"); ok {
		a, b, ok := strings.Cut(rest, ":")
		switch {
		case !ok:
			return dm, true, "want dm:<user>:<user>"
		case checkID(a, false) != "" || checkID(b, false) != "":
			return dm, true, "bad user id in a dm conversation"
		case a >= b:
			return dm, true, "the two user ids must differ and be sorted"
		}
		return [2]string{a, b}, true, ""
	}
	if rest, ok := strings.CutPrefix(id, "g:"); ok {
		if r := checkID(rest, true); r != "" {
			return dm, false, "group id: " + r
		}
		return dm, false, ""
	}
	return dm, false, "want dm:<user>:<user> or g:<group>"
}

// checkID: 1 to 128 bytes of [A-Za-z0-9._@-], and ':' when colon is true.
func checkID(s string, colon bool) string {
	if s == "" {
		return "empty"
	}
	if len(s) > maxIDBytes {
		return fmt.Sprintf("%d bytes, at most %d", len(s), maxIDBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-' || (colon && c == ':')
		if !ok {
			return fmt.Sprintf("byte %d (%q) is not allowed", i, c)
		}
	}
	return ""
}
