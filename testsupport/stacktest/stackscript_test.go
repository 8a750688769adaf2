package stacktest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStackScriptFailsLoudlyOnTakenPort runs scripts/stack.sh against its own
// directory and ports with one port already taken: it must exit non-zero
// naming the port, and leave nothing running (no pid file, no process).
func TestStackScriptFailsLoudlyOnTakenPort(t *testing.T) {
	requireStack(t)
	for _, taken := range []string{"SEQCHAT_KAFKA_PORT", "SEQCHAT_CLICKHOUSE_PORT"} {
		t.Run(taken, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			dir := t.TempDir()
			env := map[string]string{
				"SEQCHAT_STACK_DIR":             dir,
				"SEQCHAT_KAFKA_PORT":            FreePort(t),
				"SEQCHAT_KAFKA_CONTROLLER_PORT": FreePort(t),
				"SEQCHAT_CLICKHOUSE_PORT":       FreePort(t),
				"SEQCHAT_CLICKHOUSE_HTTP_PORT":  FreePort(t),
			}
			env[taken] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			out, err := stackScript(t, env, "up")
			if err == nil {
				stackScript(t, env, "down")
				t.Fatalf("stack.sh up succeeded with %s taken:\n%s", taken, out)
			}
			if !strings.Contains(out, "127.0.0.1:"+env[taken]+" is taken") {
				t.Errorf("output does not name the taken port %s:\n%s", env[taken], out)
			}
			pids, _ := filepath.Glob(filepath.Join(dir, "*", "*.pid"))
			if len(pids) > 0 {
				stackScript(t, env, "down")
				t.Errorf("left pid files behind: %v\n%s", pids, out)
			}
			if status, _ := stackScript(t, env, "status"); strings.Contains(status, "running") {
				t.Errorf("something still runs after the failed start:\n%s", status)
			}
		})
	}
}

func stackScript(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("../../scripts/stack.sh", args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
