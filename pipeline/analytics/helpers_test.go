package analytics_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// entry is one row of the messages table as the history sink writes it.
type entry struct {
	conv        string
	seq         uint64
	msgID       string
	clientMsgID string
	sender      string
	kind        string   // message, created, joined, left, kicked
	members     []string // membership events only
	sequenced   time.Time
	latencyMs   int64 // sequenced - received; negative when the ingest clock ran ahead
}

// stopMerges keeps every inserted part apart, so copies of a row stay
// visible to queries without FINAL for the whole test.
func stopMerges(t testing.TB, conn driver.Conn, db string) {
	t.Helper()
	if err := conn.Exec(context.Background(), "SYSTEM STOP MERGES "+db+".messages"); err != nil {
		t.Fatal(err)
	}
}

// insert writes entries in one batch (one part). Copies of a (conversation,
// seq) must go in separate batches: a current ClickHouse collapses them
// inside one inserted block (optimize_on_insert).
func insert(t testing.TB, conn driver.Conn, db string, entries ...entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".messages "+
		"(conversation_id, seq, msg_id, client_msg_id, sender_user_id, sender_device_id, kind, member_user_ids, "+
		"body, received_at_ms, sequenced_at_ms)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		members := e.members
		if members == nil {
			members = []string{}
		}
		seqMs := uint64(e.sequenced.UnixMilli())
		if err := batch.Append(e.conv, e.seq, e.msgID, e.clientMsgID, e.sender, e.sender+"-phone", e.kind, members,
			"body", uint64(int64(seqMs)-e.latencyMs), seqMs); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// at is a UTC instant: day "2006-01-02", clock "15:04:05.000".
func at(t testing.TB, day, clock string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05.000", day+" "+clock)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
