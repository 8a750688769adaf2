package stacktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/internal/kafkawire"
)

// The private cluster's first broker port; its nodes listen on it, +2 and
// +4, their controllers one above each (scripts/stack.sh). Away from the
// development stack's 9092 and the other scripts' ports.
const clusterPort = 19192

// Cluster is a 3-node Kafka cluster of one test (KRaft, replication factor
// 3, min.insync.replicas 2), started by the project's stack script in a
// directory of its own and stopped when the test ends: a test may kill,
// pause and restart its brokers.
type Cluster struct {
	t      testing.TB
	script string
	env    []string
	// Kafka is the client configuration of the cluster (every broker).
	Kafka kafkawire.Config
}

// StartCluster starts the test's cluster and waits until every node answers.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	requireStack(t)
	_, file, _, _ := runtime.Caller(0)
	c := &Cluster{t: t, script: filepath.Join(filepath.Dir(file), "..", "..", "scripts", "stack.sh"),
		env: append(os.Environ(), "SEQCHAT_STACK_DIR="+t.TempDir(), "SEQCHAT_KAFKA_NODES=3",
			fmt.Sprintf("SEQCHAT_KAFKA_PORT=%d", clusterPort), fmt.Sprintf("SEQCHAT_KAFKA_CONTROLLER_PORT=%d", clusterPort+1))}
	for i := range 3 {
		c.Kafka.Brokers = append(c.Kafka.Brokers, fmt.Sprintf("127.0.0.1:%d", clusterPort+2*i))
	}
	c.Kafka.ClientID = "seqchat-test"
	c.run("up", "kafka")
	t.Cleanup(func() { c.run("down", "kafka") }) // before TempDir's removal (cleanups run last-in first-out)
	return c
}

// Signal sends sig (KILL, STOP, CONT, TERM) to node ("kafka-1".."kafka-3").
func (c *Cluster) Signal(node, sig string) { c.run("signal", node, sig) }

// Up starts the nodes that are not running (a killed one) and waits until
// every node answers.
func (c *Cluster) Up() { c.run("up", "kafka") }

// BusiestNode is the node leading most partitions of topics.
func (c *Cluster) BusiestNode(topics ...string) string {
	c.t.Helper()
	admin, err := c.Kafka.NewAdmin()
	if err != nil {
		c.t.Fatal(err)
	}
	defer admin.Close()
	id, _, _, err := kafkawire.BusiestLeader(admin, topics...)
	if err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf("kafka-%d", id)
}

// Controller is the node that is the active KRaft controller.
func (c *Cluster) Controller() string {
	c.t.Helper()
	return strings.TrimSpace(c.run("controller"))
}

func (c *Cluster) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.script, args...)
	cmd.Env = c.env
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		c.t.Fatalf("stack.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}
