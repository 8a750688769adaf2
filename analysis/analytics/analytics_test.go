package analytics_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/analysis/analytics"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// The data set spans three UTC days across a month (and partition) boundary,
// plus one day outside every queried range.
const (
	d1  = "2026-02-28"
	d2  = "2026-03-01"
	d3  = "2026-03-02"
	d10 = "2026-03-10"
)

// seed writes the hand-made history every test below reads, and returns a
// client for it. Merges are stopped, so the copies stay visible.
//
//	g:team        1 created alice [alice bob carol]   d1 10:00:00   5 ms
//	              2 message alice                     d1 10:05:00  12 ms
//	              3 message bob                       d1 10:20:00  30 ms  + identical copy
//	              4 joined  dave [dave]               d1 11:00:00 1000 ms + identical copy
//	              5 message dave                      d1 11:30:00   2 ms
//	              6 kicked  by alice [bob]            d2 09:00:00   3 ms
//	              7 message carol                     d2 09:10:00   9 ms
//	              8 left    carol [carol]             d2 09:15:00   6 ms
//	              9 joined  erin [erin]               d2 12:00:00  15 ms
//	             10 message erin                      d3 08:00:00  -3 ms (ingest clock ahead)
//	dm:alice:bob  1 message alice                     d1 10:10:00        8 ms
//	              2 message bob                       d1 23:59:59.999    7 ms + conflicting copy (other msg_id)
//	              3 message alice                     d2 00:00:00.000    4 ms
//	              (4 missing)
//	              5 message bob                       d2 10:00:00       11 ms
//	g:quiet       1 created erin [erin frank]         d3 12:00:00   1 ms
//	              2 message frank                     d3 12:30:00  50 ms + conflicting copy (same msg_id, other client_msg_id)
//	              3 message erin                     d10 09:00:00  10 ms
func seed(t *testing.T) *analytics.Client {
	t.Helper()
	conn, db := stacktest.ClickHouse(t)
	stopMerges(t, conn, db)
	for _, part := range knownHistory(t) {
		insert(t, conn, db, part...)
	}
	c, err := analytics.New(conn, analytics.Config{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// knownHistory is the history above as the sink's inserts: the second part
// holds the copies, which await a merge.
func knownHistory(t *testing.T) [][]entry {
	t.Helper()
	m := func(conv string, seq uint64, sender, day, clock string, latency int64) entry {
		return entry{conv: conv, seq: seq, msgID: fmt.Sprintf("%s#%d", conv, seq), clientMsgID: fmt.Sprintf("%s-%d", sender, seq),
			sender: sender, kind: "message", sequenced: at(t, day, clock), latencyMs: latency}
	}
	ev := func(e entry, kind string, members ...string) entry {
		e.kind, e.members = kind, members
		return e
	}
	team3 := m("g:team", 3, "bob", d1, "10:20:00.000", 30)
	team4 := ev(m("g:team", 4, "dave", d1, "11:00:00.000", 1000), "joined", "dave")
	dm2 := m("dm:alice:bob", 2, "bob", d1, "23:59:59.999", 7)
	quiet2 := m("g:quiet", 2, "frank", d3, "12:30:00.000", 50)
	first := []entry{
		ev(m("g:team", 1, "alice", d1, "10:00:00.000", 5), "created", "alice", "bob", "carol"),
		m("g:team", 2, "alice", d1, "10:05:00.000", 12),
		team3,
		team4,
		m("g:team", 5, "dave", d1, "11:30:00.000", 2),
		ev(m("g:team", 6, "alice", d2, "09:00:00.000", 3), "kicked", "bob"),
		m("g:team", 7, "carol", d2, "09:10:00.000", 9),
		ev(m("g:team", 8, "carol", d2, "09:15:00.000", 6), "left", "carol"),
		ev(m("g:team", 9, "alice", d2, "12:00:00.000", 15), "joined", "erin"),
		m("g:team", 10, "erin", d3, "08:00:00.000", -3),
		m("dm:alice:bob", 1, "alice", d1, "10:10:00.000", 8),
		dm2,
		m("dm:alice:bob", 3, "alice", d2, "00:00:00.000", 4),
		m("dm:alice:bob", 5, "bob", d2, "10:00:00.000", 11),
		ev(m("g:quiet", 1, "erin", d3, "12:00:00.000", 1), "created", "erin", "frank"),
		quiet2,
		m("g:quiet", 3, "erin", d10, "09:00:00.000", 10),
	}
	conflictDM, conflictQuiet := dm2, quiet2
	conflictDM.msgID, conflictDM.clientMsgID = "other-msg-id", "bob-retry"
	conflictQuiet.clientMsgID = "frank-other"
	return [][]entry{first, {team3, team4, conflictDM, conflictQuiet}}
}

func date(t *testing.T, day string) time.Time { t.Helper(); return at(t, day, "00:00:00.000") }

func TestQueriesOnKnownHistory(t *testing.T) {
	c := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("MessagesPerDay", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			first, last string
			want        []analytics.ConversationDay
		}{
			{"three days", d1, d3, []analytics.ConversationDay{
				{date(t, d1), "dm:alice:bob", 2}, // 1, and 2 once despite its conflicting copy
				{date(t, d1), "g:team", 3},       // 2, 3 once despite its copy, 5; 1 and 4 are events
				{date(t, d2), "dm:alice:bob", 2}, // 3 (sequenced at 00:00:00.000), 5
				{date(t, d2), "g:team", 1},       // 7
				{date(t, d3), "g:quiet", 1},      // 2
				{date(t, d3), "g:team", 1},       // 10
			}},
			{"one day", d2, d2, []analytics.ConversationDay{
				{date(t, d2), "dm:alice:bob", 2},
				{date(t, d2), "g:team", 1},
			}},
			{"through d10", d3, d10, []analytics.ConversationDay{
				{date(t, d3), "g:quiet", 1},
				{date(t, d3), "g:team", 1},
				{date(t, d10), "g:quiet", 1},
			}},
			{"no data", "2025-01-01", "2025-12-31", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := c.MessagesPerDay(ctx, date(t, tc.first), date(t, tc.last))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got  %v\nwant %v", got, tc.want)
				}
			})
		}
	})

	t.Run("DailyActiveSenders", func(t *testing.T) {
		got, err := c.DailyActiveSenders(ctx, date(t, d1), at(t, d3, "23:59:59.000")) // the time of day is ignored
		if err != nil {
			t.Fatal(err)
		}
		want := []analytics.DaySenders{
			{date(t, d1), 3, 5}, // alice (team 2, dm 1), bob (team 3, dm 2), dave (team 5)
			{date(t, d2), 3, 3}, // alice (dm 3), bob (dm 5), carol (team 7)
			{date(t, d3), 2, 2}, // erin (team 10), frank (quiet 2)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})

	t.Run("GroupSizeOverTime", func(t *testing.T) {
		for _, tc := range []struct {
			conv string
			want []analytics.GroupSize
		}{
			{"g:team", []analytics.GroupSize{
				{1, at(t, d1, "10:00:00.000"), "created", 3}, // alice bob carol
				{4, at(t, d1, "11:00:00.000"), "joined", 4},  // + dave (its copy counts once)
				{6, at(t, d2, "09:00:00.000"), "kicked", 3},  // - bob
				{8, at(t, d2, "09:15:00.000"), "left", 2},    // - carol
				{9, at(t, d2, "12:00:00.000"), "joined", 3},  // + erin
			}},
			{"g:quiet", []analytics.GroupSize{{1, at(t, d3, "12:00:00.000"), "created", 2}}},
			{"dm:alice:bob", nil}, // no membership events
			{"g:unknown", nil},
		} {
			t.Run(tc.conv, func(t *testing.T) {
				got, err := c.GroupSizeOverTime(ctx, tc.conv)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got  %v\nwant %v", got, tc.want)
				}
			})
		}
	})

	t.Run("SequencingLatencyByHour", func(t *testing.T) {
		got, err := c.SequencingLatencyByHour(ctx, date(t, d1), date(t, d3))
		if err != nil {
			t.Fatal(err)
		}
		// quantileExact(l) over n sorted values is the one at index floor(l*n).
		want := []analytics.HourLatency{
			{at(t, d1, "10:00:00.000"), 4, 12, 30, 30},       // [5 8 12 30]: index 2, index 3; team 3's copy is one sample
			{at(t, d1, "11:00:00.000"), 2, 1000, 1000, 1000}, // [2 1000]: index 1, index 1
			{at(t, d1, "23:00:00.000"), 1, 7, 7, 7},          // dm 2 and its conflicting copy are one entry
			{at(t, d2, "00:00:00.000"), 1, 4, 4, 4},
			{at(t, d2, "09:00:00.000"), 3, 6, 9, 9}, // [3 6 9]: index 1, index 2
			{at(t, d2, "10:00:00.000"), 1, 11, 11, 11},
			{at(t, d2, "12:00:00.000"), 1, 15, 15, 15},
			{at(t, d3, "08:00:00.000"), 1, -3, -3, -3}, // negative, not wrapped around
			{at(t, d3, "12:00:00.000"), 2, 50, 50, 50}, // [1 50]; g:quiet 3 on d10 is outside
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})

	t.Run("GapAndDuplicateAudit", func(t *testing.T) {
		got, err := c.GapAndDuplicateAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []analytics.ConversationIntegrity{
			{ConversationID: "dm:alice:bob", MaxSeq: 5, DistinctSeqs: 4, Rows: 5, ConflictingSeqs: 1, MissingSeqs: 1},
			{ConversationID: "g:quiet", MaxSeq: 3, DistinctSeqs: 3, Rows: 4, ConflictingSeqs: 1, MissingSeqs: 0},
			{ConversationID: "g:team", MaxSeq: 10, DistinctSeqs: 10, Rows: 12, ConflictingSeqs: 0, MissingSeqs: 0},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
}

// TestCopiesAreVisibleWithoutFinal guards the data set itself: if the copies
// had been collapsed at insert or by a merge, the dedup checks above would
// pass for the wrong reason.
func TestCopiesAreVisibleWithoutFinal(t *testing.T) {
	conn, db := stacktest.ClickHouse(t)
	stopMerges(t, conn, db)
	e := entry{conv: "g:x", seq: 1, msgID: "m1", clientMsgID: "c1", sender: "alice", kind: "message",
		sequenced: at(t, d1, "10:00:00.000"), latencyMs: 1}
	insert(t, conn, db, e)
	insert(t, conn, db, e)
	if rows, final := count(t, conn, "SELECT count() FROM "+db+".messages"),
		count(t, conn, "SELECT count() FROM "+db+".messages AS m FINAL"); rows != 2 || final != 1 {
		t.Fatalf("two identical inserts: %d rows, %d with FINAL; want 2 and 1", rows, final)
	}
}

func count(t *testing.T, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
