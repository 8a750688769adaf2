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
	"github.com/seqchat/seqchat/tools/netns"
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
	// Bridge is the Linux bridge holding the brokers' address
	// (StartClusterOnBridge), empty on loopback.
	Bridge string
	// Kafka is the client configuration of the cluster (every broker).
	Kafka kafkawire.Config
}

// StartCluster starts the test's cluster and waits until every node answers.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, "", "127.0.0.1")
}

// StartClusterOnBridge is StartCluster with the brokers listening on, and
// advertising, host, an address the stack script gives to a Linux bridge
// of that name: services in network namespaces joined to the bridge
// (tools/netns) reach them, and so does everything on the host. The
// bridge is removed when the test ends. It needs root and iproute2, and
// fails the test (never skips) without them.
func StartClusterOnBridge(t testing.TB, bridge, host string) *Cluster {
	t.Helper()
	if err := netns.Check(); err != nil {
		t.Fatal(err)
	}
	return startCluster(t, bridge, host)
}

func startCluster(t testing.TB, bridge, host string) *Cluster {
	t.Helper()
	requireStack(t)
	_, file, _, _ := runtime.Caller(0)
	c := &Cluster{t: t, script: filepath.Join(filepath.Dir(file), "..", "..", "scripts", "stack.sh"), Bridge: bridge,
		env: append(os.Environ(), "SEQCHAT_STACK_DIR="+t.TempDir(), "SEQCHAT_KAFKA_NODES=3", "SEQCHAT_KAFKA_HOST="+host,
			"SEQCHAT_KAFKA_BRIDGE="+bridge,
			fmt.Sprintf("SEQCHAT_KAFKA_PORT=%d", clusterPort), fmt.Sprintf("SEQCHAT_KAFKA_CONTROLLER_PORT=%d", clusterPort+1))}
	for i := range 3 {
		c.Kafka.Brokers = append(c.Kafka.Brokers, fmt.Sprintf("%s:%d", host, clusterPort+2*i))
	}
	c.Kafka.ClientID = "seqchat-test"
	// Before TempDir's removal (cleanups run last-in first-out); clean
	// removes the bridge too.
	t.Cleanup(func() { c.run("clean", "kafka") })
	c.run("up", "kafka")
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
