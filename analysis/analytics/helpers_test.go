package analytics_test

import (
	"context"
	"fmt"
	"strings"
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
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".messages ("+insertColumns+")")
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

// insertColumns are the columns insert and insertSQL write.
const insertColumns = "conversation_id, seq, msg_id, client_msg_id, sender_user_id, sender_device_id, kind, " +
	"member_user_ids, body, received_at_ms, sequenced_at_ms"

// insertSQL is insert's batch as SQL text, for a ClickHouse reached
// without the driver (the in-process engine of the current version).
func insertSQL(db string, entries []entry) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + db + ".messages (" + insertColumns + ") VALUES")
	for i, e := range entries {
		members := make([]string, len(e.members))
		for j, m := range e.members {
			members[j] = quote(m)
		}
		seqMs := e.sequenced.UnixMilli()
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " (%s, %d, %s, %s, %s, %s, %s, [%s], 'body', %d, %d)", quote(e.conv), e.seq, quote(e.msgID),
			quote(e.clientMsgID), quote(e.sender), quote(e.sender+"-phone"), quote(e.kind), strings.Join(members, ", "),
			seqMs-e.latencyMs, seqMs)
	}
	return b.String()
}

// quote is a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
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
