package history_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestSinkStoresEveryEntryOnce writes entries of many conversations over
// several partitions and transactions, with notices among them and an
// aborted transaction: history must hold every entry once, no notice, and
// nothing of the aborted transaction.
func TestSinkStoresEveryEntryOnce(t *testing.T) {
	const partitions = 3
	topics := newTopics(t, partitions)
	store, conn, db := newStore(t)
	w := newSeqWriter(t, topics, partitions)
	want := map[string]uint64{}
	for txn := 0; txn < 10; txn++ {
		var msgs []*sarama.ProducerMessage
		for c := 0; c < 12; c++ {
			conv := fmt.Sprintf("g:c%d", c)
			for range 1 + (txn+c)%4 {
				want[conv]++
				msgs = append(msgs, w.message(message(conv, want[conv], fmt.Sprintf("body %d", want[conv]))))
			}
			msgs = append(msgs, w.message(notice(conv)))
		}
		w.commit(msgs...)
	}
	w.abort(w.message(message("g:c0", 999, "aborted")), w.message(message("g:aborted", 1, "aborted")))
	w.commit(w.message(message("dm:alice:bob", 1, "after the aborted transaction")))
	want["dm:alice:bob"] = 1

	s := startSink(t, topics, store, func(c *history.Config) { c.BatchMaxRows = 50 })
	stacktest.Eventually(t, time.Minute, "every entry in history", func() bool { return countRows(t, conn, db).final >= total(want) })
	s.stop()
	checkExact(t, conn, db, want)
	if c := countRows(t, conn, db); c.raw != total(want) || c.distinct != total(want) {
		t.Errorf("rows %+v, want %d of each: without a crash every entry is written once", c, total(want))
	}
	if n := stacktest.Gathered(t, s.reg, "seqchat_history_records_total", "outcome", "notice"); n != 120 {
		t.Errorf("notices skipped = %v, want 120", n)
	}

	// Every column of a row comes from its record.
	rows, err := store.Entries(context.Background(), "g:c3", 0, []history.Period{{From: 2, To: 2}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want2, _ := history.RowOf(message("g:c3", 2, "body 2"))
	if len(rows) != 1 || fmt.Sprintf("%+v", rows[0]) != fmt.Sprintf("%+v", want2) {
		t.Errorf("stored %+v, want %+v", rows, want2)
	}
}

// TestSinkDeadLettersPoison puts undecodable records, a record of an
// unknown version and an entry without a body among good entries: each goes
// to the dead-letter topic, and the partition goes on.
func TestSinkDeadLettersPoison(t *testing.T) {
	topics := newTopics(t, 2)
	store, conn, db := newStore(t)
	w := newSeqWriter(t, topics, 2)
	const conv = "g:poison"
	future := message(conv, 4, "from the future")
	future.Version = 2
	futureBytes, err := proto.Marshal(future)
	if err != nil {
		t.Fatal(err)
	}
	bodiless := entry(conv, 4)
	poison := []*sarama.ProducerMessage{w.raw(conv, []byte("\xff\xff not protobuf")), w.raw(conv, futureBytes), w.message(bodiless)}
	w.commit(w.message(message(conv, 1, "a")), w.message(message(conv, 2, "b")), w.message(message(conv, 3, "c")))
	w.commit(poison...)
	w.commit(w.message(message(conv, 4, "d")), w.message(message(conv, 5, "e")))

	startSink(t, topics, store, nil)
	stacktest.Eventually(t, time.Minute, "the entries after the poison", func() bool { return countRows(t, conn, db).final >= 5 })
	checkExact(t, conn, db, map[string]uint64{conv: 5})

	dead := stacktest.DeadLetters(t, topics.DeadLetter, len(poison))
	for i, d := range dead {
		if d.Stage != "history" || d.SourceTopic != topics.Sequenced || string(d.Key) != conv || d.Reason == "" {
			t.Errorf("dead letter %d: %+v", i, d)
		}
		if string(d.Value) != string(encoded(t, poison[i])) {
			t.Errorf("dead letter %d keeps %q, want the original bytes", i, d.Value)
		}
	}
	if !strings.Contains(dead[1].Reason, imv1.ErrUnknownVersion.Error()) || !strings.Contains(dead[2].Reason, history.ErrNotEntry.Error()) {
		t.Errorf("reasons %q / %q do not say why", dead[1].Reason, dead[2].Reason)
	}
}

func encoded(t *testing.T, m *sarama.ProducerMessage) []byte {
	t.Helper()
	b, err := m.Value.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSinkFlushesOnShutdown: a batch that neither its size nor its wait
// would end is written and committed when the sink is stopped.
func TestSinkFlushesOnShutdown(t *testing.T) {
	topics := newTopics(t, 1)
	store, conn, db := newStore(t)
	w := newSeqWriter(t, topics, 1)
	var msgs []*sarama.ProducerMessage
	for seq := uint64(1); seq <= 40; seq++ {
		msgs = append(msgs, w.message(message("g:shutdown", seq, "x")))
	}
	w.commit(msgs...)
	s := startSink(t, topics, store, func(c *history.Config) { c.BatchMaxRows, c.BatchMaxWait = 1<<20, time.Hour })
	stacktest.Eventually(t, time.Minute, "the batch to be read", func() bool { return stacktest.Gathered(t, s.reg, "seqchat_history_pending_records") == 40 })
	if n := countRows(t, conn, db).raw; n != 0 {
		t.Fatalf("%d rows written before the batch ended", n)
	}
	s.stop()
	checkExact(t, conn, db, map[string]uint64{"g:shutdown": 40})
	if off := committed(t, topics.Sequenced+".history", topics.Sequenced, 0); off != 40 {
		t.Errorf("committed offset %d, want 40 (after the last record)", off)
	}
}

// committed is the group's committed offset of a partition, -1 if none.
func committed(t *testing.T, group, topic string, partition int32) int64 {
	t.Helper()
	resp, err := stacktest.Admin(t).ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBlock(topic, partition); b != nil {
		return b.Offset
	}
	return -1
}

func migrate(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := chstore.Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
}

// TestSinkWaitsForClickHouse points the sink at a database that does not
// exist yet, so every insert fails: it must keep the batch, retry, commit
// nothing and report not ready; once the table exists everything arrives
// once. (failover_test.go stops a real ClickHouse server.)
func TestSinkWaitsForClickHouse(t *testing.T) {
	topics := newTopics(t, 1)
	_, conn, db := newStore(t)
	late := db + "_late"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+late) })
	store, err := history.NewStore(conn, late)
	if err != nil {
		t.Fatal(err)
	}
	w := newSeqWriter(t, topics, 1)
	for seq := uint64(1); seq <= 30; seq++ {
		w.commit(w.message(message("g:late", seq, "x")))
	}
	s := startSink(t, topics, store, func(c *history.Config) {
		c.BatchMaxRows, c.BatchMaxWait, c.RetryMax = 10, time.Hour, 200*time.Millisecond
	})
	stacktest.Eventually(t, time.Minute, "insert retries", func() bool { return stacktest.Gathered(t, s.reg, "seqchat_history_retries_total", "op", "insert") >= 3 })
	if err := s.sink.Ready(context.Background()); err == nil {
		t.Error("Ready while no insert succeeds")
	}
	if n := stacktest.Gathered(t, s.reg, "seqchat_history_pending_records"); n != 10 {
		t.Errorf("%v records read while the first batch waits, want 10 (the batch only)", n)
	}
	if off := committed(t, topics.Sequenced+".history", topics.Sequenced, 0); off >= 0 {
		t.Errorf("offset %d committed while no insert succeeded", off)
	}

	migrate(t, conn, late)
	stacktest.Eventually(t, time.Minute, "every entry once the table exists", func() bool { return countRows(t, conn, late).final >= 30 })
	stacktest.Eventually(t, 10*time.Second, "ready again", func() bool { return s.sink.Ready(context.Background()) == nil })
	s.stop()
	checkExact(t, conn, late, map[string]uint64{"g:late": 30})
}

// TestSinkReplayIsHarmless: a batch inserted again because the sink
// crashed between insert and commit. A second group re-reads the whole
// topic, as a new owner re-reads from the last commit: every row is then
// written twice, and yet FINAL, complete_up_to and the read API see each
// entry once (I7).
func TestSinkReplayIsHarmless(t *testing.T) {
	topics := newTopics(t, 2)
	store, conn, db := newStore(t)
	w := newSeqWriter(t, topics, 2)
	want := map[string]uint64{"g:r1": 30, "g:r2": 30}
	for conv, last := range want {
		msgs := []*sarama.ProducerMessage{w.message(membership(conv, 1, imv1.MembershipEvent_CREATED, "", "alice"))}
		for seq := uint64(2); seq <= last; seq++ {
			msgs = append(msgs, w.message(message(conv, seq, "x")))
		}
		w.commit(msgs...)
	}
	for _, group := range []string{"first", "replay"} {
		s := startSink(t, topics, store, func(c *history.Config) { c.GroupID, c.BatchMaxRows = topics.Sequenced+"."+group, 7 })
		stacktest.Eventually(t, time.Minute, group+" sink to write everything", func() bool {
			return stacktest.Gathered(t, s.reg, "seqchat_history_rows_inserted_total") == float64(total(want))
		})
		s.stop()
	}
	// Both sinks inserted every row (their metrics said so); background
	// merges may already have collapsed some of the copies.
	t.Logf("rows after the replay: %+v", countRows(t, conn, db))
	checkExact(t, conn, db, want)
	page, err := history.Read(context.Background(), store, history.ReadRequest{ConversationID: "g:r1", User: "alice", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 30 || page.CompleteUpTo != 30 || page.Entries[29].Seq != 30 {
		t.Errorf("read %d entries, complete_up_to %d; want 30 once each", len(page.Entries), page.CompleteUpTo)
	}
}
