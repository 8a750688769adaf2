package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"slices"
	"testing"
	"time"

	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// TestRunAgainstPipeline runs a small load (40 devices over two gateways,
// 4 groups, 4 dm pairs, 100 sends/s for 2s) through the real pipeline and
// expects every send accepted and delivered everywhere with no anomaly.
func TestRunAgainstPipeline(t *testing.T) {
	urls, _ := startPipeline(t, "a", "b")
	gen, err := loadgen.New(loadgen.Config{Gateways: urls, TokenKey: tokenKey, Users: 40, GroupSize: 10, Groups: 4, DMs: 4,
		Rate: 100, Duration: 2 * time.Second, Drain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res := runClean(t, gen, 200)
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back loadgen.Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Counts != res.Counts {
		t.Errorf("the JSON result does not round-trip: %v", err)
	}
	var img bytes.Buffer
	if err := res.Histogram.WritePNG(&img); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&img); err != nil {
		t.Errorf("histogram PNG: %v", err)
	}
}

// runClean runs gen, logs its progress and summary, and expects sends
// sends, all accepted, every delivery made and no anomaly.
func runClean(t *testing.T, gen *loadgen.Generator, sends int) *loadgen.Result {
	t.Helper()
	var progress bytes.Buffer
	res, err := gen.Run(context.Background(), &progress)
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	if err := res.WriteSummary(&summary); err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\nsummary:\n%s", progress.String(), summary.String())
	if res.Failed() {
		t.Fatalf("anomalies %v: %q", res.Anomalies, res.AnomalyExamples)
	}
	c := res.Counts
	if c.Sends != sends || c.Accepted != c.Sends || c.Deliveries != c.ExpectedDeliveries || c.Deliveries < c.Sends*2 {
		t.Errorf("counts %+v: want %d sends, all accepted, every delivery made", c, sends)
	}
	if res.Latency.Count != c.Deliveries || res.Latency.MaxMs <= 0 {
		t.Errorf("latency %+v for %d deliveries", res.Latency, c.Deliveries)
	}
	return res
}

// TestDevicesReconnectAndResume stops one of two gateways in the middle of
// the load: its devices must reconnect to the other, resume where they
// were and retry what got no answer, so that every send is still accepted
// once and delivered once, in order, to every member.
func TestDevicesReconnectAndResume(t *testing.T) {
	urls, stopGateway := startPipeline(t, "a", "b")
	gen, err := loadgen.New(loadgen.Config{Gateways: urls, TokenKey: tokenKey, Users: 40, GroupSize: 10, Groups: 4, DMs: 4,
		Rate: 100, Duration: 4 * time.Second, Drain: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait := runInBackground(t, gen)
	stacktest.Eventually(t, 30*time.Second, "100 sends fired", func() bool { return gen.Progress().Sends >= 100 })
	onA := gen.DevicesOn(urls[0])
	stoppedAt := time.Now()
	stopGateway("a")
	// What a's devices wait for while they move is counted for them.
	stacktest.Eventually(t, 10*time.Second, "a's devices waiting", func() bool { return gen.OutstandingTo(onA, 0) > 0 })
	res := wait()
	if res.Failed() {
		t.Fatalf("anomalies %v (counts %+v): %q", res.Anomalies, res.Counts, res.AnomalyExamples)
	}
	if len(onA) != 20 {
		t.Errorf("%d devices on gateway a, want 20 (round-robin over two)", len(onA))
	}
	if n := gen.OutstandingTo(onA, 0); n != 0 {
		t.Errorf("%d sends still outstanding to a's devices after everything was delivered", n)
	}
	if back := gen.ConnectedSince(onA, stoppedAt); len(back) != len(onA) || !slices.IsSorted(back) {
		t.Errorf("%d of a's %d devices connected again since the stop (%v), want all, in order", len(back), len(onA), back)
	}
	if back := gen.ConnectedSince(onA, time.Now()); len(back) != 0 {
		t.Errorf("%d devices connected after the run ended", len(back))
	}
	c := res.Counts
	// Devices are spread round-robin: half of the 40 were on gateway a.
	if c.Disconnects < 20 || c.Reconnects != c.Disconnects {
		t.Errorf("disconnects %d, reconnects %d: want at least 20, every one reconnected", c.Disconnects, c.Reconnects)
	}
	if c.Sends != 400 || c.Accepted != c.Sends || c.Deliveries != c.ExpectedDeliveries {
		t.Errorf("counts %+v: want 400 sends, all accepted, every delivery made", c)
	}
	if got := len(gen.Accepted()); got != c.Accepted {
		t.Errorf("Accepted lists %d messages, counts say %d", got, c.Accepted)
	}
}

// runInBackground runs gen until its load has started (failing the test if
// setup failed) and returns a function that waits for its result.
func runInBackground(t *testing.T, gen *loadgen.Generator) (wait func() *loadgen.Result) {
	t.Helper()
	type outcome struct {
		res *loadgen.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := gen.Run(context.Background(), nil)
		done <- outcome{res, err}
	}()
	select {
	case <-gen.LoadStarted():
	case out := <-done:
		t.Fatalf("the run ended before its load started: %v", out.err)
	}
	return func() *loadgen.Result {
		t.Helper()
		out := <-done
		if out.err != nil {
			t.Fatal(out.err)
		}
		return out.res
	}
}
