//go:build failover

// Failover tests run the history binary as a separate process and kill it
// with SIGKILL under load, and stop a ClickHouse server of their own for 30
// seconds under load (make test-failover). Either way history must end up
// exact: every (conversation, seq) once under FINAL, none missing (I7).
package history_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const failoverPartitions = 4

// TestFailoverSinkKill kills the history binary with SIGKILL at random
// moments during steady load, restarting it each time.
func TestFailoverSinkKill(t *testing.T) {
	topics := newTopics(t, failoverPartitions)
	_, conn, db := newStore(t)
	l := startLoad(t, newSeqWriter(t, topics, failoverPartitions), 100)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	p := startProc(t, "history-0", topics, db)
	const kills = 4
	for i := 1; i <= kills; i++ {
		// Once the process owns the partitions (after a restart: once the
		// dead one's session expired), let it write a random amount, then
		// kill it at a random moment, not just after an insert.
		p.waitReady(t)
		before := countRows(t, conn, db).raw
		step := uint64(200 + rng.Intn(1500))
		stacktest.Eventually(t, 2*time.Minute, fmt.Sprintf("%d more rows", step), func() bool { return countRows(t, conn, db).raw >= before+step })
		time.Sleep(time.Duration(rng.Intn(1500)) * time.Millisecond)
		p.Kill()
		c := countRows(t, conn, db)
		t.Logf("kill %d: SIGKILL at %d rows (%d distinct); committed offsets %v", i, c.raw, c.distinct,
			committedAll(t, topics.Sequenced+".history", topics.Sequenced))
		p = startProc(t, fmt.Sprintf("history-%d", i), topics, db)
	}
	want := l.finish(t)
	stacktest.Eventually(t, 2*time.Minute, "every entry in history", func() bool { return countRows(t, conn, db).final >= total(want) })

	// The restarted binary's read API serves the complete conversation.
	h := read(t, p.api, "g:k7", "user=alice&limit=1")
	if h.CompleteUpTo != want["g:k7"] || len(h.Entries) != 1 || h.Entries[0].Event == nil {
		t.Errorf("read API: complete_up_to %d, entries %+v; want %d and the created event", h.CompleteUpTo, h.Entries, want["g:k7"])
	}
	p.Stop(t)
	checkExact(t, conn, db, want)
	c := countRows(t, conn, db)
	t.Logf("%d entries in %d conversations; %d rows written (duplicates from the kills: %d), %d under FINAL",
		total(want), len(want), c.raw, c.raw-c.final, c.final)
}

// TestFailoverClickHouseOutage stops a private ClickHouse server (never the
// shared one) for 30 seconds under load: the sink must keep its batches,
// commit nothing, read no further than its batches, and once the server is
// back write everything exactly once.
func TestFailoverClickHouseOutage(t *testing.T) {
	ch := startPrivateClickHouse(t)
	topics := newTopics(t, failoverPartitions)
	db := stacktest.Name(t, "seqchat")
	ctx := context.Background()
	store, err := history.OpenStore(ctx, chstore.Config{Addr: ch.addr, Database: db}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const batch = 200
	s := startSink(t, topics, store, func(c *history.Config) { c.BatchMaxRows, c.RetryMax = batch, time.Second })
	l := startLoad(t, newSeqWriter(t, topics, failoverPartitions), 100)
	group := topics.Sequenced + ".history"

	stacktest.Eventually(t, time.Minute, "1000 rows before the outage", func() bool { return stacktest.Gathered(t, s.reg, "seqchat_history_rows_inserted_total") >= 1000 })
	ch.run(t, "down")
	down := time.Now()
	stacktest.Eventually(t, time.Minute, "every partition waiting for clickhouse", func() bool {
		return stacktest.Gathered(t, s.reg, "seqchat_history_retrying_partitions") == failoverPartitions
	})
	if err := s.sink.Ready(ctx); err == nil {
		t.Error("Ready while ClickHouse is down")
	}
	// Offsets are committed on a ticker, so the inserts that succeeded
	// before every partition started retrying may still be committed (a CI
	// run saw them move). The second commit from now began after that.
	commits := stacktest.Gathered(t, s.reg, "seqchat_history_offset_commits_total")
	stacktest.Eventually(t, 10*time.Second, "two offset commits since every partition retries", func() bool {
		return stacktest.Gathered(t, s.reg, "seqchat_history_offset_commits_total") >= commits+2
	})
	offsets := committedAll(t, group, topics.Sequenced)
	// The outage lasts 30 seconds: a scenario, not a synchronisation.
	time.Sleep(30*time.Second - time.Since(down))
	if n := stacktest.Gathered(t, s.reg, "seqchat_history_pending_records"); n > failoverPartitions*batch {
		t.Errorf("%v records held during the outage, want at most %d (one batch per partition)", n, failoverPartitions*batch)
	}
	if got := committedAll(t, group, topics.Sequenced); fmt.Sprint(got) != fmt.Sprint(offsets) {
		t.Errorf("offsets moved while ClickHouse was down: %v -> %v", offsets, got)
	}
	retries := stacktest.Gathered(t, s.reg, "seqchat_history_retries_total", "op", "insert")
	ch.run(t, "up")
	t.Logf("ClickHouse down for %v; %v insert retries", time.Since(down).Round(time.Second), retries)

	after := stacktest.Gathered(t, s.reg, "seqchat_history_rows_inserted_total")
	stacktest.Eventually(t, time.Minute, "1000 rows after the outage", func() bool {
		return stacktest.Gathered(t, s.reg, "seqchat_history_rows_inserted_total") >= after+1000
	})
	want := l.finish(t)
	conn, _, err := chstore.Open(ctx, chstore.Config{Addr: ch.addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stacktest.Eventually(t, 2*time.Minute, "every entry in history", func() bool { return countRows(t, conn, db).final >= total(want) })
	stacktest.Eventually(t, 10*time.Second, "ready again", func() bool { return s.sink.Ready(ctx) == nil })
	s.stop()
	checkExact(t, conn, db, want)
	c := countRows(t, conn, db)
	t.Logf("%d entries in %d conversations; %d rows written, %d under FINAL", total(want), len(want), c.raw, c.final)
}

// committedAll is the group's committed offset of every partition.
func committedAll(t *testing.T, group, topic string) []int64 {
	t.Helper()
	var out []int64
	for p := int32(0); p < failoverPartitions; p++ {
		out = append(out, committed(t, group, topic, p))
	}
	return out
}

// load writes entries to conversations g:k0.. in transactions until
// finished: each conversation starts with a created event (alice, bob),
// then messages, with notices among them.
type load struct {
	w     *seqWriter
	want  map[string]uint64
	once  sync.Once
	stopc chan struct{}
	done  chan struct{}
	err   error
}

func startLoad(t *testing.T, w *seqWriter, convs int) *load {
	t.Helper()
	l := &load{w: w, want: map[string]uint64{}, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.err = l.run(convs)
	}()
	t.Cleanup(l.stop) // before the producer closes and the topics go
	return l
}

// stop ends the load and waits for its last transaction.
func (l *load) stop() {
	l.once.Do(func() { close(l.stopc) })
	<-l.done
}

// finish stops the load and returns each conversation's last seq.
func (l *load) finish(t *testing.T) map[string]uint64 {
	t.Helper()
	l.stop()
	if l.err != nil {
		t.Fatalf("load: %v", l.err)
	}
	return l.want
}

func (l *load) run(convs int) error {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for {
		select {
		case <-l.stopc:
			return nil
		default:
		}
		var msgs []*sarama.ProducerMessage
		for range 10 {
			conv := fmt.Sprintf("g:k%d", rng.Intn(convs))
			for range 1 + rng.Intn(3) {
				seq := l.want[conv] + 1
				r := message(conv, seq, strings.Repeat("x", 100))
				if seq == 1 {
					r = membership(conv, 1, imv1.MembershipEvent_CREATED, "", "alice", "bob")
				}
				b, err := imv1.Marshal(r)
				if err != nil {
					return err
				}
				msgs = append(msgs, l.w.raw(conv, b))
				l.want[conv] = seq
			}
			if rng.Intn(4) == 0 {
				b, _ := imv1.Marshal(notice(conv))
				msgs = append(msgs, l.w.raw(conv, b))
			}
		}
		if err := l.send(msgs); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond) // pacing: a steady load, not a flood
	}
}

func (l *load) send(msgs []*sarama.ProducerMessage) error {
	p := l.w.prod
	if err := p.BeginTxn(); err != nil {
		return err
	}
	if err := p.SendMessages(msgs); err != nil {
		return err
	}
	return p.CommitTxn()
}

// proc is one history process with its read API and admin addresses.
type proc struct {
	*stacktest.Process
	api   string // base URL of its read API
	admin string
}

func startProc(t *testing.T, name string, topics kafkawire.Topics, db string) *proc {
	t.Helper()
	chAddr := os.Getenv(stacktest.EnvClickHouseAddr)
	if chAddr == "" {
		chAddr = chstore.DefaultAddr
	}
	api, admin := "127.0.0.1:"+stacktest.FreePort(t), "127.0.0.1:"+stacktest.FreePort(t)
	return &proc{api: "http://" + api, admin: admin, Process: stacktest.Start(t, name, stacktest.Build(t, "../../cmd/history"),
		[]string{"SEQCHAT_SERVICE_TOKEN=" + testToken},
		"-kafka-brokers", strings.Join(stacktest.Kafka(t).BrokerList(), ","),
		"-clickhouse-addr", chAddr, "-clickhouse-database", db,
		"-seq-topic", topics.Sequenced, "-deadletter-topic", topics.DeadLetter, "-group-id", topics.Sequenced+".history",
		"-listen-addr", api, "-admin-addr", admin,
		"-batch-max-rows", "500", "-batch-max-wait", "50ms", "-session-timeout", "6s", "-log-format", "text")}
}

// waitReady waits for /readyz: in a group session, no partition waiting.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	stacktest.Eventually(t, time.Minute, p.Name+" ready", func() bool { return stacktest.Ready(p.admin) })
}

// privateClickHouse is a ClickHouse server of this test only, started and
// stopped with the project's stack script on its own ports and directory.
type privateClickHouse struct {
	addr string
	env  []string
}

func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	stacktest.Kafka(t) // skips with -short, like every integration test
	port := stacktest.FreePort(t)
	ch := &privateClickHouse{addr: "127.0.0.1:" + port, env: append(os.Environ(), "SEQCHAT_STACK_DIR="+t.TempDir(),
		"SEQCHAT_CLICKHOUSE_PORT="+port, "SEQCHAT_CLICKHOUSE_HTTP_PORT="+stacktest.FreePort(t))}
	ch.run(t, "up")
	t.Cleanup(func() { ch.run(t, "down") }) // before TempDir's removal (cleanups run last-in first-out)
	return ch
}

func (ch *privateClickHouse) run(t *testing.T, verb string) {
	t.Helper()
	cmd := exec.Command("../../scripts/stack.sh", verb, "clickhouse")
	cmd.Env = ch.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stack.sh %s clickhouse: %v\n%s", verb, err, out)
	}
}
