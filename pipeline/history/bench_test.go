package history_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// Benchmarks against the real stack (docs/benchmarks.md has the command and
// the figures). Each measures one end-to-end run and reports its own units;
// run them with -benchtime=1x.
var (
	benchSinkRows   = flag.Int("history.sink-rows", 200_000, "BenchmarkSink: sequenced entries to write")
	benchConvs      = flag.Int("history.conversations", 10_000, "BenchmarkReadAPI: conversations")
	benchPerConv    = flag.Int("history.per-conversation", 105, "BenchmarkReadAPI: entries per conversation")
	benchRequests   = flag.Int("history.requests", 2000, "BenchmarkReadAPI: requests per measurement")
	benchBodyString = strings.Repeat("b", 100)
)

// BenchmarkSink measures the sink's rate from the sequenced topic into
// ClickHouse, per batch size: from the first row inserted to the last.
func BenchmarkSink(b *testing.B) {
	const partitions = 8
	topics := newTopics(b, partitions)
	w := newSeqWriter(b, topics, partitions)
	n := *benchSinkRows
	start := time.Now()
	for i := 0; i < n; i += 5000 {
		var msgs []*sarama.ProducerMessage
		for j := i; j < min(i+5000, n); j++ {
			conv := fmt.Sprintf("g:bench-%d", j%1000)
			msgs = append(msgs, w.message(message(conv, uint64(j/1000+1), benchBodyString)))
		}
		w.commit(msgs...)
	}
	b.Logf("%d sequenced entries written to %d partitions in %v", n, partitions, time.Since(start).Round(time.Millisecond))
	for _, batch := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for range b.N {
				store, _, _ := newStore(b)
				s := startSink(b, topics, store, func(c *history.Config) {
					c.GroupID = fmt.Sprintf("%s.bench.%d.%d", topics.Sequenced, batch, time.Now().UnixNano())
					c.BatchMaxRows = batch
					c.BatchMaxWait = 0
				})
				first, last, already := waitInserted(b, s, n)
				s.stop()
				b.ReportMetric((float64(n)-already)/last.Sub(first).Seconds(), "rows/s")
			}
		})
	}
}

// waitInserted polls the sink's counter until n rows are in, and returns
// when the first and the last were seen, and how many the first time.
func waitInserted(b *testing.B, s *runningSink, n int) (first, last time.Time, already float64) {
	b.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Minute)
	for {
		select {
		case <-deadline:
			b.Fatalf("%v of %d rows within 10 minutes", stacktest.Gathered(b, s.reg, "seqchat_history_rows_inserted_total"), n)
		case <-tick.C:
		}
		v := stacktest.Gathered(b, s.reg, "seqchat_history_rows_inserted_total")
		if v > 0 && first.IsZero() {
			first, already = time.Now(), v
		}
		if v >= float64(n) {
			return first, time.Now(), already
		}
	}
}

// BenchmarkReadAPI measures the read API on a big table: 100-entry pages
// of random conversations, over HTTP, right after the bulk insert (many
// parts) and after OPTIMIZE ... FINAL (merged).
func BenchmarkReadAPI(b *testing.B) {
	store, conn, db := newStore(b)
	ctx := context.Background()
	convs, per := *benchConvs, *benchPerConv
	start := time.Now()
	rows := make([]history.Row, 0, 50_000)
	flush := func() {
		if err := store.Insert(ctx, rows); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for c := range convs {
		conv := fmt.Sprintf("g:read-%d", c)
		for seq := 1; seq <= per; seq++ {
			r := message(conv, uint64(seq), benchBodyString)
			if seq == 1 {
				r = membership(conv, 1, imv1.MembershipEvent_CREATED, "bench", "alice", "bob")
			}
			row, err := history.RowOf(r)
			if err != nil {
				b.Fatal(err)
			}
			if rows = append(rows, row); len(rows) == cap(rows) {
				flush()
			}
		}
	}
	flush()
	took := time.Since(start)
	b.Logf("%d rows (%d conversations x %d) inserted in %v: %.0f rows/s (including building them)",
		convs*per, convs, per, took.Round(time.Millisecond), float64(convs*per)/took.Seconds())
	srv := serve(b, store).URL

	for _, phase := range []string{"fresh", "merged"} {
		if phase == "merged" {
			start := time.Now()
			if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+".messages FINAL"); err != nil {
				b.Fatal(err)
			}
			b.Logf("OPTIMIZE FINAL took %v", time.Since(start).Round(time.Millisecond))
		}
		for _, clients := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/clients=%d", phase, clients), func(b *testing.B) {
				for range b.N {
					measureReads(b, srv, convs, clients)
				}
			})
		}
	}
}

// measureReads sends *benchRequests page reads from clients goroutines and
// reports the latency percentiles and the rate.
func measureReads(b *testing.B, srv string, convs, clients int) {
	b.Helper()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failed    error
		wg        sync.WaitGroup
	)
	per := *benchRequests / clients
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c) + time.Now().UnixNano()))
			for range per {
				user := []string{"alice", "bob"}[rng.Intn(2)]
				url := fmt.Sprintf("%s/v1/conversations/g:read-%d/messages?user=%s&after_seq=%d&limit=100", srv, rng.Intn(convs), user, rng.Intn(5))
				t0 := time.Now()
				err := readPage(url)
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				if err != nil && failed == nil {
					failed = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(latencies)
	pct := func(p int) float64 { return float64(latencies[len(latencies)*p/100].Microseconds()) / 1000 }
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
}

func readPage(url string) error {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	var p historyapi.Page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return err
	}
	if len(p.Entries) != 100 {
		return fmt.Errorf("%s: %d entries, want a full page of 100", url, len(p.Entries))
	}
	return nil
}
