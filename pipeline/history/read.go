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
	dm, isDM, err := checkRequest(req)
	if err != nil {
		return Page{}, err
	}
	page := Page{ConversationID: req.ConversationID, Entries: []Row{}, NextAfterSeq: req.AfterSeq}
	if isDM && req.User != dm[0] && req.User != dm[1] {
		return Page{}, &Error{CodeNotMember, fmt.Sprintf("%s is not one of the users of %s", req.User, req.ConversationID)}
	}
	sum, err := s.Summary(ctx, req.ConversationID, req.User)
	if err != nil {
		return Page{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	page.CompleteUpTo = sum.CompleteUpTo
	periods := []Period{{From: 1, To: Open}}
	if !isDM {
		if !sum.Found {
			return Page{}, &Error{CodeNotFound, fmt.Sprintf("history holds nothing of %s", req.ConversationID)}
		}
		if periods = PeriodsOf(sum.Changes); len(periods) == 0 {
			return Page{}, &Error{CodeNotMember, fmt.Sprintf("%s was never a member of %s", req.User, req.ConversationID)}
		}
	}
	ranges := Clip(periods, req.AfterSeq, sum.CompleteUpTo)
	if len(ranges) > MaxRangesPerQuery {
		// Every seq of the ranges is present (they end at h), so the page
		// ends at the last range read and the next page goes on from there.
		ranges = ranges[:MaxRangesPerQuery]
	}
	rows, err := s.Entries(ctx, req.ConversationID, ranges, req.Limit)
	if err != nil {
		return Page{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(rows) > 0 {
		page.Entries = rows
		page.NextAfterSeq = rows[len(rows)-1].Seq
	}
	return page, nil
}

// checkRequest validates req; for a dm it returns its two users.
func checkRequest(req ReadRequest) (dm [2]string, isDM bool, err error) {
	if req.Limit < 1 || req.Limit > MaxLimit {
		return dm, false, invalid("limit %d: want 1..%d", req.Limit, MaxLimit)
	}
	if r := checkID(req.User, false); r != "" {
		return dm, false, invalid("user %q: %s", req.User, r)
	}
	dm, isDM, reason := parseConversation(req.ConversationID)
	if reason != "" {
		return dm, false, invalid("conversation_id %q: %s", req.ConversationID, reason)
	}
	return dm, isDM, nil
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
