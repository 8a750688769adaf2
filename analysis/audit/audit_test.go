package audit_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/analysis/audit"
)

// seedAnomalies writes one conversation per kind of finding:
//
//	g:clean     1 2 3 4, seq 2 twice (identical copy: not an anomaly)
//	g:gaps      2 3 6 10 (missing 1, 4-5, 7-9)
//	g:conflict  1; 2 twice identical + a different entry (other msg_id);
//	            3 as two different sends sharing a msg_id
//	g:reuse     alice's client_msg_id "dup" at seqs 1 (twice) and 3; bob's "dup" at 2
//	g:clock     sequenced at +1000, +3000, +2500, +2600, +2600, +2000 ms
func seedAnomalies(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, db := history(t)
	clock := func(seq uint64, at int64) entry {
		e := msg("g:clock", seq, "alice", fmt.Sprintf("c%d", seq))
		e.at = ms(at)
		return e
	}
	conflict2 := msg("g:conflict", 2, "alice", "c2")
	other2 := msg("g:conflict", 2, "mallory", "c-x")
	other2.msgID, other2.at = "other", ms(2500)
	conflict3b := msg("g:conflict", 3, "bob", "c3b")
	reuse1 := msg("g:reuse", 1, "alice", "dup")
	insert(t, conn, db,
		msg("g:clean", 1, "alice", "c1"), msg("g:clean", 2, "alice", "c2"),
		msg("g:clean", 3, "bob", "c3"), msg("g:clean", 4, "alice", "c4"),
		msg("g:gaps", 2, "alice", "c2"), msg("g:gaps", 3, "alice", "c3"),
		msg("g:gaps", 6, "alice", "c6"), msg("g:gaps", 10, "alice", "c10"),
		msg("g:conflict", 1, "alice", "c1"), conflict2, msg("g:conflict", 3, "alice", "c3"),
		reuse1, msg("g:reuse", 2, "bob", "dup"), msg("g:reuse", 3, "alice", "dup"), msg("g:reuse", 4, "alice", "x"),
		clock(1, 1000), clock(2, 3000), clock(3, 2500), clock(4, 2600), clock(5, 2600), clock(6, 2000),
	)
	// A second part: what a sink writes again after a crash, and the rows a
	// second writer of the same seqs would leave.
	insert(t, conn, db, msg("g:clean", 2, "alice", "c2"), conflict2, other2, conflict3b, reuse1)
	return conn, db
}

// The expected findings of seedAnomalies, worked out by hand.
var (
	clockReport = audit.ConversationReport{
		ConversationID: "g:clock", MaxSeq: 6, Entries: 6, Rows: 6,
		ClockRegressions: 2,
		Regressions: []audit.ClockRegression{
			{Seq: 3, SequencedAtMs: ms(2500), PrevSeq: 2, PrevSequencedAtMs: ms(3000)},
			{Seq: 6, SequencedAtMs: ms(2000), PrevSeq: 5, PrevSequencedAtMs: ms(2600)},
		},
	}
	conflictReport = audit.ConversationReport{
		ConversationID: "g:conflict", MaxSeq: 3, Entries: 3, Rows: 6, PendingDuplicates: 1,
		ConflictingSeqs: 2,
		Conflicts: []audit.Conflict{
			{Seq: 2, Entries: []audit.ConflictEntry{
				{MsgID: "g:conflict#2", SenderUserID: "alice", SenderDeviceID: "alice-phone", ClientMsgID: "c2", Rows: 2},
				{MsgID: "other", SenderUserID: "mallory", SenderDeviceID: "mallory-phone", ClientMsgID: "c-x", Rows: 1},
			}},
			{Seq: 3, Entries: []audit.ConflictEntry{
				{MsgID: "g:conflict#3", SenderUserID: "alice", SenderDeviceID: "alice-phone", ClientMsgID: "c3", Rows: 1},
				{MsgID: "g:conflict#3", SenderUserID: "bob", SenderDeviceID: "bob-phone", ClientMsgID: "c3b", Rows: 1},
			}},
		},
	}
	gapsReport = audit.ConversationReport{
		ConversationID: "g:gaps", MaxSeq: 10, Entries: 4, Rows: 4,
		MissingSeqs: 6, MissingRanges: 3,
		Missing: []audit.SeqRange{{From: 1, To: 1}, {From: 4, To: 5}, {From: 7, To: 9}},
	}
	reuseReport = audit.ConversationReport{
		ConversationID: "g:reuse", MaxSeq: 4, Entries: 4, Rows: 5, PendingDuplicates: 1,
		ReusedClientMsgIDs: 1,
		Reused:             []audit.ReusedClientMsgID{{SenderUserID: "alice", ClientMsgID: "dup", Seqs: []uint64{1, 3}, SeqCount: 2}},
	}
)

func TestScanFindsEachAnomaly(t *testing.T) {
	conn, db := seedAnomalies(t)

	t.Run("all conversations", func(t *testing.T) {
		got := scan(t, conn, audit.Config{Database: db})
		want := &audit.Report{
			Database: db,
			Totals: audit.Totals{
				Conversations:          5,
				Rows:                   5 + 4 + 6 + 5 + 6,
				Entries:                4 + 4 + 3 + 4 + 6,
				PendingDuplicates:      3, // the copies of g:clean 2, g:conflict 2 (alice's entry), g:reuse 1
				AnomalousConversations: 4,
				MissingSeqs:            6,
				ConflictingSeqs:        2,
				ReusedClientMsgIDs:     1,
				ClockRegressions:       2,
			},
			Conversations: []audit.ConversationReport{clockReport, conflictReport, gapsReport, reuseReport},
		}
		equal(t, got, want)
		if !got.HasAnomalies() {
			t.Error("HasAnomalies is false")
		}
	})

	for _, tc := range []struct {
		conv      string
		want      *audit.ConversationReport // nil: no anomalies
		rows      uint64
		anomalies uint64
	}{
		{"g:clean", nil, 5, 0},
		{"g:gaps", &gapsReport, 4, 6},
		{"g:conflict", &conflictReport, 6, 2},
		{"g:reuse", &reuseReport, 5, 1},
		{"g:clock", &clockReport, 6, 2},
		{"g:absent", nil, 0, 0},
	} {
		t.Run("conversation "+tc.conv, func(t *testing.T) {
			got := scan(t, conn, audit.Config{Database: db, Conversation: tc.conv})
			want := []audit.ConversationReport{}
			if tc.want != nil {
				want = append(want, *tc.want)
			}
			if !reflect.DeepEqual(got.Conversations, want) {
				t.Errorf("conversations\n got  %+v\n want %+v", got.Conversations, want)
			}
			if got.Totals.Rows != tc.rows || got.Totals.Anomalies() != tc.anomalies {
				t.Errorf("totals %+v: want %d rows, %d anomalies", got.Totals, tc.rows, tc.anomalies)
			}
		})
	}

	t.Run("caps", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  audit.Config
			want func(r *audit.Report)
		}{
			{"one detail per list", audit.Config{MaxDetails: 1}, func(r *audit.Report) {
				clock, conflict, gaps, reuse := clockReport, conflictReport, gapsReport, reuseReport
				clock.Regressions = clock.Regressions[:1]
				conflict.Conflicts = conflict.Conflicts[:1]
				gaps.Missing = gaps.Missing[:1]
				reuse.Reused = []audit.ReusedClientMsgID{{SenderUserID: "alice", ClientMsgID: "dup", Seqs: []uint64{1}, SeqCount: 2}}
				r.Conversations = []audit.ConversationReport{clock, conflict, gaps, reuse}
			}},
			{"two conversations listed", audit.Config{MaxConversations: 2}, func(r *audit.Report) {
				r.Conversations = []audit.ConversationReport{clockReport, conflictReport}
				r.OmittedConversations = 2
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.cfg.Database = db
				got := scan(t, conn, tc.cfg)
				want := &audit.Report{Database: db, Totals: got.Totals}
				tc.want(want)
				equal(t, got, want)
				if got.Totals.Anomalies() != 11 || got.Totals.AnomalousConversations != 4 {
					t.Errorf("caps changed the totals: %+v", got.Totals)
				}
			})
		}
	})
}

func TestScanCleanHistory(t *testing.T) {
	conn, db := history(t)
	insert(t, conn, db, msg("dm:a:b", 1, "a", "a1"), msg("dm:a:b", 2, "b", "b1"), msg("dm:a:b", 3, "a", "a2"),
		msg("g:x", 1, "a", "a1"), msg("g:x", 2, "a", "a2"))
	insert(t, conn, db, msg("dm:a:b", 2, "b", "b1"), msg("g:x", 1, "a", "a1")) // copies await a merge
	insert(t, conn, db, msg("g:x", 1, "a", "a1"))
	got := scan(t, conn, audit.Config{Database: db})
	want := &audit.Report{
		Database:      db,
		Totals:        audit.Totals{Conversations: 2, Rows: 8, Entries: 5, PendingDuplicates: 3},
		Conversations: []audit.ConversationReport{},
	}
	equal(t, got, want)
	if got.HasAnomalies() {
		t.Error("HasAnomalies is true")
	}
	var text strings.Builder
	if err := got.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "no anomalies") || !strings.Contains(text.String(), "3 identical copies await a merge") {
		t.Errorf("text report:\n%s", text.String())
	}
}

// TestScanSince audits only the conversations with a row sequenced or
// inserted since the given time, but each of them in full.
func TestScanSince(t *testing.T) {
	conn, db := history(t)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	aged := func(e entry, seqAt, insertedAt time.Time) entry {
		e.at, e.inserted = uint64(seqAt.UnixMilli()), insertedAt
		return e
	}
	since := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	insert(t, conn, db,
		aged(msg("g:old", 2, "a", "a2"), old, old), // missing 1, but unchanged since
		aged(msg("g:late", 1, "a", "a1"), old, old),
		aged(msg("g:late", 2, "a", "a2"), old, old),
		aged(msg("g:late", 4, "a", "a4"), old.Add(time.Second), since), // inserted late (a replay), missing 3
		aged(msg("g:new", 2, "a", "a2"), since, since.Add(time.Hour)),  // missing 1
	)
	got := scan(t, conn, audit.Config{Database: db, Since: since.Add(500 * time.Millisecond)})
	want := &audit.Report{
		Database: db,
		Since:    since, // to the second
		Totals: audit.Totals{Conversations: 2, Rows: 4, Entries: 4, AnomalousConversations: 2, MissingSeqs: 2,
			ClockRegressions: 0},
		Conversations: []audit.ConversationReport{
			{ConversationID: "g:late", MaxSeq: 4, Entries: 3, Rows: 3, MissingSeqs: 1, MissingRanges: 1,
				Missing: []audit.SeqRange{{From: 3, To: 3}}},
			{ConversationID: "g:new", MaxSeq: 2, Entries: 1, Rows: 1, MissingSeqs: 1, MissingRanges: 1,
				Missing: []audit.SeqRange{{From: 1, To: 1}}},
		},
	}
	equal(t, got, want)
	if all := scan(t, conn, audit.Config{Database: db}); all.Totals.Conversations != 3 || all.Totals.MissingSeqs != 3 {
		t.Errorf("without since: %+v, want 3 conversations and 3 missing seqs", all.Totals)
	}
}

// TestScanTooManyReusersIsIncomplete: past MaxConversations conversations
// with reused client_msg_ids the reuses are still counted, and the report
// says its conversation counts are lower bounds.
func TestScanTooManyReusersIsIncomplete(t *testing.T) {
	conn, db := history(t)
	insert(t, conn, db, msg("g:1", 1, "a", "dup"), msg("g:1", 2, "a", "dup"),
		msg("g:2", 1, "a", "dup"), msg("g:2", 2, "a", "dup"))
	got := scan(t, conn, audit.Config{Database: db, MaxConversations: 1})
	if !got.Incomplete || got.Totals.ReusedClientMsgIDs != 2 || len(got.Conversations) != 1 ||
		got.Conversations[0].ConversationID != "g:1" {
		t.Errorf("got %+v, want Incomplete, 2 reused client_msg_ids, g:1 listed", got)
	}
	if full := scan(t, conn, audit.Config{Database: db}); full.Incomplete || full.Totals.AnomalousConversations != 2 {
		t.Errorf("with room for both: %+v", full)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]audit.Config{
		"database not an identifier": {Database: "x; DROP TABLE y"},
		"negative cap":               {MaxDetails: -1},
		"since before 1970":          {Since: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := audit.New(fakeConn{}, cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if _, err := audit.New(nil, audit.Config{}); err == nil {
		t.Fatal("New accepted a nil connection")
	}
}

// fakeConn satisfies driver.Conn for tests that never reach the server.
type fakeConn struct{ driver.Conn }

func equal(t *testing.T, got, want *audit.Report) {
	t.Helper()
	if want.Conversations == nil {
		want.Conversations = []audit.ConversationReport{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report\n got  %+v\n want %+v", *got, *want)
	}
}
