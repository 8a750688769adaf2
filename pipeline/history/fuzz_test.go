package history_test

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// FuzzParseReadRequest: whatever the path value and query, parsing never
// panics, and what it accepts is within the documented bounds.
func FuzzParseReadRequest(f *testing.F) {
	f.Add("g:team", "user=alice&after_seq=3&limit=10")
	f.Add("dm:alice:bob", "user=bob")
	f.Add("dm:bob:alice", "user=bob&limit=1001")
	f.Add("g:", "user=&after_seq=-1")
	f.Fuzz(func(t *testing.T, conv, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		req, err := history.ParseReadRequest(conv, q)
		if err != nil {
			var e *history.Error
			if !errors.As(err, &e) || e.Code != history.CodeInvalid {
				t.Fatalf("error %v, want an *Error with code invalid", err)
			}
			return
		}
		if req.Limit < 1 || req.Limit > history.MaxLimit || req.User == "" || req.ConversationID != conv {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzRowOf: a decoded sequenced record of any content maps to a row or to
// ErrNotEntry, never a panic, and a row is always an entry.
func FuzzRowOf(f *testing.F) {
	for _, r := range []*imv1.SequencedRecord{message("g:x", 1, "hi"), membership("g:x", 2, imv1.MembershipEvent_LEFT, "", "bob"), notice("g:x")} {
		b, err := imv1.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	kinds := []history.Kind{history.KindMessage, history.KindCreated, history.KindJoined, history.KindLeft, history.KindKicked}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &imv1.SequencedRecord{}
		if imv1.Unmarshal(b, r) != nil {
			return
		}
		row, err := history.RowOf(r)
		if err != nil {
			if !errors.Is(err, history.ErrNotEntry) {
				t.Fatalf("error %v, want ErrNotEntry", err)
			}
			return
		}
		if row.Seq == 0 || row.ConversationID == "" || !slices.Contains(kinds, row.Kind) || row.MemberUserIDs == nil {
			t.Fatalf("row %+v from %v", row, r)
		}
	})
}
