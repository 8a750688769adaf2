package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// sdkDevices are the user/device pairs the SDK's integration tests
// connect as (sdk/js/integration); each gets a token in SEQCHAT_TOKENS.
var sdkDevices = []string{
	"alice/phone", "alice/reload", "alice/dup", "alice/burst",
	"bob/phone", "bob/relay",
	"carol/phone",
}

// TestSDKAgainstTheGateway builds the TypeScript SDK (sdk/js) and runs its
// integration tests with Node against two gateways of the in-process
// pipeline: reconnect and resume, duplicate sends, gap fill, membership
// boundaries and a persisted outbox, all on the real broker and
// ClickHouse. It fails when node or npm is missing.
func TestSDKAgainstTheGateway(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the SDK's tests: %v", err)
	}
	npm := lookNpm(t)
	dir := buildSDK(t, npm)
	tests, err := filepath.Glob(filepath.Join(dir, "dist", "integration", "*.test.js"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no built integration tests in %s/dist/integration (err %v)", dir, err)
	}

	p := startPipeline(t)
	p.startGateway("a")
	p.startGateway("b")
	// A gateway with a small send budget: its sends are refused
	// (rate_limited) and resent by the SDK's outbox.
	p.startGateway("slow", func(c *gateway.Config) { c.SendsPerSecond, c.SendBurst = 20, 5 })
	tokens := map[string]string{}
	for _, d := range sdkDevices {
		user, device, _ := strings.Cut(d, "/")
		tokens[d] = p.token(user, device, time.Hour)
	}
	tj, err := json.Marshal(tokens)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SEQCHAT_GATEWAYS=ws://" + p.gateways["a"].addr + "/ws,ws://" + p.gateways["b"].addr + "/ws",
		"SEQCHAT_TOKENS=" + string(tj),
		"SEQCHAT_SLOW_GATEWAY=ws://" + p.gateways["slow"].addr + "/ws",
	}
	args := append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, tests...)
	runIn(t, dir, env, node, args...)
}

func lookNpm(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to build the SDK: %v", err)
	}
	return npm
}

// buildSDK builds sdk/js (installing its dev dependencies first if they
// are missing) and returns its directory.
func buildSDK(t *testing.T, npm string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk", "js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "typescript")); err != nil {
		runIn(t, dir, nil, npm, "ci", "--no-audit", "--no-fund")
	}
	runIn(t, dir, nil, npm, "run", "build")
	return dir
}

// TestSDKUnitTests runs the SDK's own unit tests (node --test over the
// reorder buffer, ack batching, codec, outbox, stores, reconnect schedule
// and the client on a fake socket), so that make test runs them too.
func TestSDKUnitTests(t *testing.T) {
	npm := lookNpm(t)
	runIn(t, buildSDK(t, npm), nil, npm, "test")
}

// TestSDKInABrowser loads the built SDK in headless Chromium (the
// platform's WebSocket, a localStorage store): a page sends to the real
// gateway; then a page with no reachable gateway sends, and after a reload
// with the gateway back the send kept in localStorage goes out and lands
// once, in order.
func TestSDKInABrowser(t *testing.T) {
	dir := buildSDK(t, lookNpm(t))
	p := startPipeline(t)
	p.startGateway("web")
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(files.Close)
	gw := "ws://" + p.gateways["web"].addr + "/ws"
	conv := "g:browser-sdk"
	page := func(gateway string, extra url.Values) string {
		q := url.Values{"gw": {gateway}, "token": {p.token("alice", "web", time.Hour)}, "conv": {conv}}
		for k, v := range extra {
			q[k] = v
		}
		return files.URL + "/integration/browser.html?" + q.Encode()
	}

	ctx := startBrowser(t)
	type entry struct {
		Seq  int    `json:"seq"`
		Text string `json:"text"`
		Own  bool   `json:"own"`
	}
	wait := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
			errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.state)`))
			t.Fatalf("waiting for %s: %v; page state %s", what, err, errText)
		}
	}
	entries := func() []entry {
		t.Helper()
		es, err := chromedp.Run(ctx, chromedp.Evaluate[[]entry](`window.state.entries`))
		if err != nil {
			t.Fatal(err)
		}
		return es
	}

	if err := do(ctx, chromedp.Navigate(page(gw, url.Values{"create": {"1"}, "say": {"first"}}))); err != nil {
		t.Fatal(err)
	}
	wait("the group and the first message", `window.state && window.state.entries.length >= 2 && window.state.pending === 0`)
	if got := fmt.Sprint(entries()); got != "[{1 created true} {2 first true}]" {
		t.Fatalf("first page shows %s", got)
	}

	// Offline: nothing listens on port 9; the send waits in localStorage.
	if err := do(ctx, chromedp.Navigate(page("ws://127.0.0.1:9/ws", url.Values{"say": {"written offline"}}))); err != nil {
		t.Fatal(err)
	}
	wait("the offline send pending", `window.state && window.state.pending === 1`)
	// The reload, with the gateway back.
	if err := do(ctx, chromedp.Navigate(page(gw, nil))); err != nil {
		t.Fatal(err)
	}
	wait("the restored send settled", `window.state && window.state.settled.length === 1 && window.state.pending === 0`)
	wait("its entry", `window.state.entries.some(e => e.text === "written offline")`)
	es := entries()
	for i := 1; i < len(es); i++ {
		if es[i].Seq <= es[i-1].Seq {
			t.Fatalf("entries out of order or repeated after the reload: %v", es)
		}
	}
	if last := es[len(es)-1]; last != (entry{Seq: 3, Text: "written offline", Own: true}) {
		t.Fatalf("after the reload the page shows %v, want the offline send last, at seq 3", es)
	}
}

// runIn runs a command in dir with extra environment, failing the test
// (with its output) if it fails.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
}

// TestDemoCarriesTheCurrentSDK compiles the SDK as the demo page uses it
// and compares it with the copy the gateway embeds (demo/sdk): a change to
// sdk/js without `make demo-sdk` fails here.
func TestDemoCarriesTheCurrentSDK(t *testing.T) {
	dir := buildSDK(t, lookNpm(t))
	out := t.TempDir()
	runIn(t, dir, nil, filepath.Join(dir, "node_modules", ".bin", "tsc"), "-p", "tsconfig.demo.json", "--outDir", out)
	fresh, err := filepath.Glob(filepath.Join(out, "*.js"))
	if err != nil || len(fresh) == 0 {
		t.Fatalf("tsc wrote no modules to %s (err %v)", out, err)
	}
	embedded, err := filepath.Glob(filepath.Join("demo", "sdk", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) != len(fresh) {
		t.Fatalf("demo/sdk has %d modules, the SDK compiles to %d: run make demo-sdk", len(embedded), len(fresh))
	}
	for _, f := range fresh {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("demo", "sdk", filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Fatalf("demo/sdk/%s differs from the SDK's source (err %v): run make demo-sdk", filepath.Base(f), err)
		}
	}
}
