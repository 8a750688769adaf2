package chstore_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	conn, db := stacktest.ClickHouse(t) // migrated once already
	ctx := context.Background()
	applied, err := chstore.Migrate(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, want nothing", applied)
	}
	all, err := chstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var recorded uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations FINAL").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != uint64(len(all)) {
		t.Fatalf("schema_migrations holds %d versions, want %d", recorded, len(all))
	}
}

func TestMigrateRefusesBadDatabaseName(t *testing.T) {
	conn, _ := stacktest.ClickHouse(t)
	if _, err := chstore.Migrate(context.Background(), conn, "x; DROP TABLE y"); err == nil {
		t.Fatal("Migrate accepted a database name that is not an identifier")
	}
}

// TestBatchInsertAndReadBack writes sequenced rows through clickhouse-go's
// batch API (with a duplicate, as a sink writes after a crash) and reads them
// back exactly once each with FINAL.
func TestBatchInsertAndReadBack(t *testing.T) {
	conn, db := stacktest.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := uint64(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	insert := func(seqs ...uint64) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".messages "+
			"(conversation_id, seq, msg_id, sender_user_id, kind, member_user_ids, body, received_at_ms, sequenced_at_ms)")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range seqs {
			kind := "message"
			members := []string{}
			if s == 1 {
				kind, members = "created", []string{"alice", "bob"}
			}
			if err := batch.Append("g:1", s, "m"+string(rune('0'+s)), "alice", kind, members, "body", base+s, base+s+5); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	insert(1, 2, 3, 4)
	insert(3, 4, 5) // 3 and 4 again

	rows, err := conn.Query(ctx, "SELECT seq, kind, member_user_ids, sequenced_at FROM "+db+".messages AS m FINAL "+
		"WHERE conversation_id = ? ORDER BY seq", "g:1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []uint64
	for rows.Next() {
		var (
			seq     uint64
			kind    string
			members []string
			at      time.Time
		)
		if err := rows.Scan(&seq, &kind, &members, &at); err != nil {
			t.Fatal(err)
		}
		if want := time.UnixMilli(int64(base + seq + 5)).UTC().Truncate(time.Second); !at.Equal(want) {
			t.Errorf("seq %d: sequenced_at %v, want %v (derived from sequenced_at_ms)", seq, at, want)
		}
		if (seq == 1) != (kind == "created" && len(members) == 2) {
			t.Errorf("seq %d: kind %s members %v", seq, kind, members)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []uint64{1, 2, 3, 4, 5}
	if len(seqs) != len(want) {
		t.Fatalf("FINAL read %v, want %v", seqs, want)
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("FINAL read %v, want %v", seqs, want)
		}
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":         {"m/messages.sql": {Data: []byte("x")}},
		"duplicate version": {"m/0001_a.sql": {Data: []byte("x")}, "m/0001_b.sql": {Data: []byte("y")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := chstore.LoadMigrations(fsys, "m"); err == nil {
				t.Fatal("LoadMigrations accepted it")
			}
		})
	}
}
