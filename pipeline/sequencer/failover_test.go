//go:build failover

// Failover tests run the sequencer binary as separate processes and kill,
// add, remove and pause them under load (make test-failover). Model: Kafka's
// transactions system test — input set == output set, no duplicates, order
// kept — checked over every record of the sequenced log.
package sequencer_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/pipeline/stacktest"
)

const failoverPartitions = 4

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sequencerBinary builds cmd/sequencer once per test run.
func sequencerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "seqchat-sequencer")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sequencer")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/sequencer").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one sequencer process.
type proc struct {
	name  string
	cmd   *exec.Cmd
	admin string
	mu    sync.Mutex
	logs  bytes.Buffer
	done  chan struct{}
}

func startProc(t *testing.T, name string, topics kafkawire.Topics) *proc {
	t.Helper()
	admin := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(sequencerBinary(t),
		"-kafka-brokers", strings.Join(stacktest.Kafka(t).BrokerList(), ","),
		"-raw-topic", topics.Raw, "-seq-topic", topics.Sequenced, "-state-topic", topics.SequencerState,
		"-deadletter-topic", topics.DeadLetter, "-group-id", topics.Raw+".sequencer",
		"-session-timeout", "6s", "-admin-addr", admin, "-log-format", "text")
	p := &proc{name: name, cmd: cmd, admin: admin, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			fmt.Fprintf(&p.logs, "%s\n", sc.Text())
			p.mu.Unlock()
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", p.name, p.log())
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill -9s the process and waits for it to be gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop asks for a graceful shutdown (SIGTERM) and waits for the exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit within 60s of SIGTERM", p.name)
	}
}

// metric reads one sample of the process's /metrics (-1 if unavailable).
func (p *proc) metric(name string) float64 {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// waitMetric waits until the process reports name == want.
func (p *proc) waitMetric(t *testing.T, name string, want float64, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%s: %s = %v", p.name, name, want), func() bool { return p.metric(name) == want })
}

// eventually polls cond (another process's state has no other signal) until
// it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// progress waits until the log holds n more entries than when called.
func (l *seqLog) progress(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := l.check.Entries() + n
	l.mu.Unlock()
	l.waitFor(t, 2*time.Minute, fmt.Sprintf("%d more entries", n), func(l *seqLog) bool { return l.check.Entries() >= target })
}

// verifyExactlyOnce: every distinct send has one entry or (non-members
// only) a rejection; no entry was sequenced past a gap, since none was lost.
func verifyExactlyOnce(t *testing.T, l *seqLog, w *workload) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	sequenced := 0
	for _, k := range w.keys {
		entry, n := l.entryOf(k)
		switch {
		case n > 1:
			t.Errorf("%s sequenced %d times", k, n)
		case n == 1:
			sequenced++
			if entry.PredecessorMissing {
				t.Errorf("%s sequenced past a gap, though no send was lost", k)
			}
		case l.outcomes[k][0].GetRejection().GetCode() != "not_member":
			t.Errorf("%s: no entry, outcome %v", k, l.outcomes[k][0])
		}
	}
	t.Logf("%d raw records, %d distinct sends, %d sequenced, %d entries in the log", w.sends, len(w.keys), sequenced, l.check.Entries())
}

// runLoad sends the workload in the background; the returned wait blocks
// until it is all written.
func runLoad(t *testing.T, w *workload, topics kafkawire.Topics) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.send(t, topics, 2, 5, 40*time.Millisecond)
	}()
	return func() { <-done }
}

// TestFailoverCrash kills the sequencer with SIGKILL at random moments
// during steady load, restarting it each time.
func TestFailoverCrash(t *testing.T) {
	topics := newTopics(t, failoverPartitions)
	w := newWorkload(3, 70, 30, 50)
	l := readLog(t, topics, failoverPartitions)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	p := startProc(t, "sequencer-0", topics)
	loaded := runLoad(t, w, topics)
	const kills = 6
	for i := 1; i <= kills; i++ {
		l.progress(t, 100+rng.Intn(400))
		p.kill()
		t.Logf("kill %d: SIGKILL at %d entries", i, l.entries())
		p = startProc(t, fmt.Sprintf("sequencer-%d", i), topics)
	}
	loaded()
	l.waitFor(t, 3*time.Minute, "an outcome for every send", func(l *seqLog) bool { return l.resolved(w.keys) })
	p.stop(t)
	l.finish(t, topics, failoverPartitions)
	verifyExactlyOnce(t, l, w)
}

// TestFailoverRebalance adds and removes instances during load.
func TestFailoverRebalance(t *testing.T) {
	topics := newTopics(t, failoverPartitions)
	w := newWorkload(4, 70, 30, 50)
	l := readLog(t, topics, failoverPartitions)
	a := startProc(t, "a", topics)
	loaded := runLoad(t, w, topics)
	l.progress(t, 300)
	b := startProc(t, "b", topics) // join: partitions split between a and b
	b.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions/2, time.Minute)
	l.progress(t, 300)
	a.stop(t) // leave: b takes everything
	b.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions, time.Minute)
	l.progress(t, 300)
	c := startProc(t, "c", topics)
	c.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions/2, time.Minute)
	loaded()
	l.waitFor(t, 3*time.Minute, "an outcome for every send", func(l *seqLog) bool { return l.resolved(w.keys) })
	b.stop(t)
	c.stop(t)
	l.finish(t, topics, failoverPartitions)
	verifyExactlyOnce(t, l, w)
}

// TestFailoverZombie pauses an instance (SIGSTOP) until its partitions move
// to another, then resumes it: the paused one must be fenced, and nothing
// it wrote after losing its partitions may become visible.
func TestFailoverZombie(t *testing.T) {
	topics := newTopics(t, failoverPartitions)
	w := newWorkload(5, 70, 30, 50)
	l := readLog(t, topics, failoverPartitions)
	zombie := startProc(t, "zombie", topics)
	zombie.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions, time.Minute)
	loaded := runLoad(t, w, topics)
	l.progress(t, 300)
	heir := startProc(t, "heir", topics)
	heir.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions/2, time.Minute)
	l.progress(t, 200)
	zombie.signal(syscall.SIGSTOP)
	// The heir takes the paused instance's partitions once its session expires.
	heir.waitMetric(t, "seqchat_sequencer_partitions", failoverPartitions, time.Minute)
	l.progress(t, 200)
	zombie.signal(syscall.SIGCONT)
	// Resumed, the zombie still has fetched records in hand and tries to
	// commit them: the broker must refuse.
	eventually(t, time.Minute, "the resumed zombie to be fenced", func() bool {
		return zombie.metric("seqchat_sequencer_fenced_total") >= 1
	})
	t.Logf("zombie log after SIGCONT:\n%s", grepLines(zombie.log(), "fenced"))
	loaded()
	l.waitFor(t, 3*time.Minute, "an outcome for every send", func(l *seqLog) bool { return l.resolved(w.keys) })
	zombie.stop(t)
	heir.stop(t)
	l.finish(t, topics, failoverPartitions)
	verifyExactlyOnce(t, l, w)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
