package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sdkDevices are the user/device pairs the SDK's integration tests
// connect as (sdk/js/integration); each gets a token in SEQCHAT_TOKENS.
var sdkDevices = []string{
	"alice/phone", "alice/reload", "alice/dup",
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
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to build the SDK: %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk", "js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "typescript")); err != nil {
		runIn(t, dir, nil, npm, "ci", "--no-audit", "--no-fund")
	}
	runIn(t, dir, nil, npm, "run", "build")
	tests, err := filepath.Glob(filepath.Join(dir, "dist", "integration", "*.test.js"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no built integration tests in %s/dist/integration (err %v)", dir, err)
	}

	p := startPipeline(t)
	p.startGateway("a")
	p.startGateway("b")
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
	}
	args := append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, tests...)
	runIn(t, dir, env, node, args...)
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
