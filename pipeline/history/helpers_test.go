package history_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// testToken is the service token of the API tests.
const testToken = "history-test-token-0123456789"

// newTopics creates a fresh set of pipeline topics, deleted at cleanup.
func newTopics(t testing.TB, partitions int32) kafkawire.Topics {
	t.Helper()
	topics := kafkawire.PrefixedTopics(stacktest.Name(t, "hist"))
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})...)
	return topics
}

// newStore is a Store over a fresh migrated database, dropped at cleanup.
func newStore(t testing.TB) (*history.Store, driver.Conn, string) {
	t.Helper()
	conn, db := stacktest.ClickHouse(t)
	s, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	return s, conn, db
}

// seqWriter writes sequenced records the way the sequencer does: in
// transactions, to the partition of their conversation.
type seqWriter struct {
	t          testing.TB
	prod       sarama.SyncProducer
	topic      string
	partitions int32
}

func newSeqWriter(t testing.TB, topics kafkawire.Topics, partitions int32) *seqWriter {
	t.Helper()
	cfg := stacktest.Kafka(t)
	prod, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "w")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return &seqWriter{t: t, prod: prod, topic: topics.Sequenced, partitions: partitions}
}

func (w *seqWriter) message(r *imv1.SequencedRecord) *sarama.ProducerMessage {
	w.t.Helper()
	b, err := imv1.Marshal(r)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.raw(r.ConversationId, b)
}

// raw is a record of any bytes, on the partition of key.
func (w *seqWriter) raw(key string, value []byte) *sarama.ProducerMessage {
	p := int32(kafkawire.PartitionFor([]byte(key), int(w.partitions)))
	return &sarama.ProducerMessage{Topic: w.topic, Partition: p, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}
}

// commit writes msgs in one committed transaction; abort in an aborted one,
// which no read_committed reader may ever see.
func (w *seqWriter) commit(msgs ...*sarama.ProducerMessage) { w.t.Helper(); w.txn(true, msgs) }
func (w *seqWriter) abort(msgs ...*sarama.ProducerMessage)  { w.t.Helper(); w.txn(false, msgs) }

func (w *seqWriter) txn(commit bool, msgs []*sarama.ProducerMessage) {
	w.t.Helper()
	if err := w.prod.BeginTxn(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.prod.SendMessages(msgs); err != nil {
		w.t.Fatal(err)
	}
	end := w.prod.CommitTxn
	if !commit {
		end = w.prod.AbortTxn
	}
	if err := end(); err != nil {
		w.t.Fatal(err)
	}
}

const baseMs = int64(1_790_000_000_000) // Sept 2026: one month partition

func entry(conv string, seq uint64) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, Seq: seq, MsgId: fmt.Sprintf("%s/%d", conv, seq),
		ClientMsgId: fmt.Sprintf("c%d", seq), SenderUserId: "alice", SenderDeviceId: "phone", ClientSeq: seq,
		ReceivedAtMs: baseMs + int64(seq), SequencedAtMs: baseMs + int64(seq) + 1, Origin: "test"}
}

func message(conv string, seq uint64, body string) *imv1.SequencedRecord {
	r := entry(conv, seq)
	r.Body = &imv1.SequencedRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(body)}}
	return r
}

func membership(conv string, seq uint64, kind imv1.MembershipEvent_Kind, title string, users ...string) *imv1.SequencedRecord {
	r := entry(conv, seq)
	r.Body = &imv1.SequencedRecord_Membership{Membership: &imv1.MembershipEvent{Kind: kind, UserIds: users, Title: title}}
	return r
}

// notice is a rejection to a sender: seq 0, never history.
func notice(conv string) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: "rejected", SenderUserId: "mallory",
		Body: &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{Code: "not_member", Message: "no"}}}
}

// runningSink is a Sink running in this process.
type runningSink struct {
	sink *history.Sink
	reg  *prometheus.Registry
	stop func()
}

// startSink runs a sink over topics into store until stop (or the test's end).
func startSink(t testing.TB, topics kafkawire.Topics, store *history.Store, tune func(*history.Config)) *runningSink {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := history.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: topics.Sequenced + ".history", Store: store,
		BatchMaxWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, Registerer: reg,
		Logger: discard()}
	if tune != nil {
		tune(&cfg)
	}
	s, err := history.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &runningSink{sink: s, reg: reg, stop: stacktest.Run(t, "sink", s.Run)}
}

// counts are the row counts of a database's messages table.
type counts struct {
	raw, final, distinct uint64
}

func countRows(t testing.TB, conn driver.Conn, db string) counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c counts
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".messages").Scan(&c.raw); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".messages AS m FINAL").Scan(&c.final); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(conversation_id, seq) FROM "+db+".messages").Scan(&c.distinct); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkExact verifies I7 against want (conversation -> last seq): under
// FINAL every (conversation, seq) 1..last is present exactly once, and
// nothing else is.
func checkExact(t testing.TB, conn driver.Conn, db string, want map[string]uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, "SELECT conversation_id, count(), uniqExact(seq), min(seq), max(seq) FROM "+db+
		".messages AS m FINAL GROUP BY conversation_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var (
			conv                string
			n, distinct, lo, hi uint64
		)
		if err := rows.Scan(&conv, &n, &distinct, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		seen[conv] = true
		if last, ok := want[conv]; !ok || n != last || distinct != last || lo != 1 || hi != last {
			t.Errorf("%s: FINAL holds %d rows, %d distinct seqs %d..%d; want seqs 1..%d once each", conv, n, distinct, lo, hi, last)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for conv, last := range want {
		if !seen[conv] && last > 0 {
			t.Errorf("%s: no rows, want seqs 1..%d", conv, last)
		}
	}
}

func total(want map[string]uint64) uint64 {
	var n uint64
	for _, v := range want {
		n += v
	}
	return n
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
