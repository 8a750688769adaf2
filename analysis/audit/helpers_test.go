package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/analysis/audit"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// base is the sequencing time the data sets count from.
var base = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

// ms is base plus d milliseconds, as sequenced_at_ms.
func ms(d int64) uint64 { return uint64(base.UnixMilli() + d) }

// entry is one row of the messages table; the device is sender + "-phone".
type entry struct {
	conv        string
	seq         uint64
	msgID       string
	clientMsgID string
	sender      string
	at          uint64    // sequenced_at_ms
	inserted    time.Time // zero means now
}

// msg is the usual entry: msg_id "<conv>#<seq>", sequenced seq seconds after base.
func msg(conv string, seq uint64, sender, clientMsgID string) entry {
	return entry{conv: conv, seq: seq, msgID: fmt.Sprintf("%s#%d", conv, seq), clientMsgID: clientMsgID,
		sender: sender, at: ms(int64(seq) * 1000)}
}

// history is a fresh database with merges stopped, so copies of a row stay
// visible for the whole test.
func history(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, db := stacktest.ClickHouse(t)
	if err := conn.Exec(context.Background(), "SYSTEM STOP MERGES "+db+".messages"); err != nil {
		t.Fatal(err)
	}
	return conn, db
}

// insert writes entries in one batch. Copies of a (conversation, seq) must
// go in separate batches: a current ClickHouse collapses them inside one
// inserted block (optimize_on_insert).
func insert(t *testing.T, conn driver.Conn, db string, entries ...entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".messages "+
		"(conversation_id, seq, msg_id, client_msg_id, sender_user_id, sender_device_id, kind, body, "+
		"received_at_ms, sequenced_at_ms, inserted_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		inserted := e.inserted
		if inserted.IsZero() {
			inserted = time.Now()
		}
		if err := batch.Append(e.conv, e.seq, e.msgID, e.clientMsgID, e.sender, e.sender+"-phone", "message", "body",
			e.at-5, e.at, inserted.UTC()); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, conn driver.Conn, cfg audit.Config) *audit.Report {
	t.Helper()
	a, err := audit.New(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := a.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
