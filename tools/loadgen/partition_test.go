package loadgen_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/pipelinetest"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/chaos"
	"github.com/seqchat/seqchat/tools/loadgen"
	"github.com/seqchat/seqchat/tools/netns"
)

// The tests' bridge and the brokers' address on it (10.213.1.0/24 is make
// chaos-cluster's, 10.213.250.0/24 the netns package's test's).
const (
	ciBridge = "sc-ci"
	ciHost   = "10.213.2.1"
	// partitionLength is how long the isolated service is cut off: twice
	// a consumer session (10 s), so that its partitions move meanwhile.
	partitionLength = 20 * time.Second
)

// isolate joins a namespace named name to the cluster's bridge for the
// rest of the test.
func isolate(t *testing.T, cluster *stacktest.Cluster, name string, index int) *netns.Namespace {
	t.Helper()
	ns, err := netns.Join(cluster.Bridge, name, index)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Remove(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// partition cuts ns off for partitionLength (longer if during takes
// longer), then restores it; it returns when the link came back. during
// runs while the link is down, given the time it went down.
func partition(t *testing.T, ns *netns.Namespace, during func(cut time.Time)) time.Time {
	t.Helper()
	if err := ns.Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	restored := false
	t.Cleanup(func() {
		if !restored {
			ns.Restore()
		}
	})
	// The link stays down until the pipeline recovered without the service.
	during(cut)
	time.Sleep(time.Until(cut.Add(partitionLength))) // the fault's length: a scenario, not a synchronisation
	if err := ns.Restore(); err != nil {
		t.Fatal(err)
	}
	restored = true
	t.Logf("%s cut off for %v", ns.Name, time.Since(cut).Round(time.Millisecond))
	return time.Now()
}

// delivered waits until no send older than 2 s is outstanding and returns
// how long after since that was.
func delivered(t *testing.T, gen *loadgen.Generator, since time.Time) time.Duration {
	t.Helper()
	stacktest.Eventually(t, 2*time.Minute, "every send older than 2 s delivered", func() bool { return gen.Outstanding(2*time.Second) == 0 })
	return time.Since(since)
}

// checkLog reads the sequenced topic as the fanout and the sink do and
// fails the test on any seq twice, gap, or send sequenced twice among the
// run's conversations.
func checkLog(t *testing.T, kcfg kafkawire.Config, topic string, gen *loadgen.Generator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	accepted := gen.Accepted()
	lc, err := chaos.CheckSequencedLog(ctx, kcfg, []chaos.LogGeneration{{Topic: topic}}, chaos.WantedSeqs(accepted))
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Violations) > 0 {
		t.Fatalf("sequenced log: %q", lc.Violations)
	}
	if lc.Entries < len(accepted) {
		t.Fatalf("sequenced log: %d entries of the run's conversations, %d sends accepted", lc.Entries, len(accepted))
	}
	t.Logf("sequenced log: %d entries of the run's conversations, each seq once, contiguous", lc.Entries)
}

// checkRun fails the test on any anomaly, refused or lost send.
func checkRun(t *testing.T, res *loadgen.Result, minSends int) {
	t.Helper()
	if res.Failed() {
		t.Fatalf("anomalies %v: %q", res.Anomalies, res.AnomalyExamples)
	}
	c := res.Counts
	if c.Sends < minSends || c.Accepted != c.Sends || c.Deliveries != c.ExpectedDeliveries {
		t.Errorf("counts %+v: want at least %d sends, all accepted, every delivery made", c, minSends)
	}
	t.Logf("%d sends, %d deliveries; latency p50 %.0f ms, p99 %.0f ms, max %.0f ms; refusals %v, reconnects %d",
		c.Sends, c.Deliveries, res.Latency.P50ms, res.Latency.P99ms, res.Latency.MaxMs, res.Refusals, c.Reconnects)
}

// groupMembers is how many partitions of topic each member of group owns,
// by instance id (member id for dynamic members), and the group's state.
func groupMembers(t *testing.T, kcfg kafkawire.Config, group, topic string) (map[string]int, string) {
	t.Helper()
	admin, err := kcfg.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	out, state, err := kafkawire.GroupAssignment(admin, group, topic)
	if err != nil {
		return nil, "unknown"
	}
	return out, state
}

// TestSequencerPartitionOnACluster cuts one of two sequencers off the
// network (its namespace's link down) for 20 s under steady load, on a
// private 3-node cluster: its partitions must move to the other while it
// is away, it must be fenced (or drop what it held) when it comes back,
// and nothing it wrote after losing them may be in the sequenced log:
// every seq once, contiguous, every send delivered once, in order, to
// every member. make test runs it beside TestBrokerFaultsOnACluster,
// without -race.
func TestSequencerPartitionOnACluster(t *testing.T) {
	cluster := stacktest.StartClusterOnBridge(t, ciBridge, ciHost)
	p := pipelinetest.Start(t, pipelinetest.Config{Kafka: cluster.Kafka, Replication: 3, Partitions: partitions, Prefix: "lg",
		ServiceToken: serviceToken, TokenKey: tokenKey})
	urls := []string{p.StartGateway("a").URL(), p.StartGateway("b").URL()}
	group := p.Sequencer.GroupID
	ns := isolate(t, cluster, "sc-ci-sequencer", 1)
	admin := net.JoinHostPort(ns.Addr.String(), "9100")
	bin, args := ns.Command(stacktest.Build(t, "../../cmd/sequencer"),
		"-kafka-brokers", strings.Join(cluster.Kafka.Brokers, ","), "-admin-addr", admin, "-log-format", "text",
		"-raw-topic", p.Topics.Raw, "-seq-topic", p.Topics.Sequenced, "-state-topic", p.Topics.SequencerState,
		"-deadletter-topic", p.Topics.DeadLetter, "-heads-topic", p.Topics.Heads,
		"-group-id", group, "-instance-id", "isolated",
		// Its batches wait a second for more records, so that when it is
		// cut off it most likely holds records it has not committed.
		"-batch-max-wait", "1s")
	proc := stacktest.Start(t, "isolated sequencer", bin, nil, args...)
	owns := func() float64 { return stacktest.Metric(admin, "seqchat_sequencer_partitions") }
	stacktest.Eventually(t, time.Minute, "the isolated sequencer owning half the partitions", func() bool { return owns() == partitions/2 })

	gen, err := loadgen.New(loadgen.Config{Gateways: urls, TokenKey: tokenKey, Users: 20, GroupSize: 5, Groups: 3, DMs: 3,
		Rate: 12, Duration: 45 * time.Second, Drain: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait := runInBackground(t, gen)
	stacktest.Eventually(t, time.Minute, "100 sends fired", func() bool { return gen.Progress().Sends >= 100 })

	var logAtCut int
	restored := partition(t, ns, func(cut time.Time) {
		logAtCut = len(proc.Log())
		stacktest.Eventually(t, partitionLength, "the other sequencer owning every partition", func() bool {
			m, state := groupMembers(t, cluster.Kafka, group, p.Topics.Raw)
			_, present := m["isolated"]
			return state == "Stable" && !present && len(m) == 1
		})
		moved := time.Since(cut)
		all := delivered(t, gen, cut)
		t.Logf("while it was cut off: its partitions moved after %v, everything was delivered after %v",
			moved.Round(time.Millisecond), all.Round(time.Millisecond))
	})
	// Its /readyz answered all along (it cannot tell a partition from a
	// quiet broker until its requests time out): back means rejoined.
	stacktest.Eventually(t, time.Minute, "the isolated sequencer owning partitions again", func() bool {
		m, state := groupMembers(t, cluster.Kafka, group, p.Topics.Raw)
		return state == "Stable" && m["isolated"] > 0 && owns() == float64(m["isolated"])
	})
	rejoined := time.Since(restored)
	all := delivered(t, gen, restored)
	t.Logf("after the link came back: rejoined with partitions in %v, everything delivered in %v",
		rejoined.Round(time.Millisecond), all.Round(time.Millisecond))
	t.Logf("the isolated sequencer was fenced %v times; its log since the cut:\n%s",
		stacktest.Metric(admin, "seqchat_sequencer_fenced_total"), proc.Log()[logAtCut:])

	res := wait()
	checkRun(t, res, 450)
	checkLog(t, cluster.Kafka, p.Topics.Sequenced, gen)
}

// TestGatewayPartitionOnACluster cuts one of two gateways off the network
// for 20 s under steady load, on a private 3-node cluster. The gateway's
// namespace holds it whole, as a host of its own: cut, it reaches neither
// the brokers nor the history API, and its devices' connections go
// silent (packets dropped, nothing closed). The devices notice by their
// keepalive, reconnect to the other gateway and write their unanswered
// sends again: every send must be accepted once and delivered once, in
// order, to every member, and the sequenced log hold each seq once.
func TestGatewayPartitionOnACluster(t *testing.T) {
	cluster := stacktest.StartClusterOnBridge(t, ciBridge, ciHost)
	// The gateway binary takes no topic names: the private cluster's
	// topics have their default ones. History listens on the bridge, so
	// that the isolated gateway reaches it while its link is up.
	p := pipelinetest.Start(t, pipelinetest.Config{Kafka: cluster.Kafka, Replication: 3, Partitions: partitions, Prefix: "lg",
		ServiceToken: serviceToken, TokenKey: tokenKey, DefaultTopics: true, HistoryHost: ciHost})
	urlA := p.StartGateway("a").URL()
	ns := isolate(t, cluster, "sc-ci-gateway", 2)
	admin := net.JoinHostPort(ns.Addr.String(), "9100")
	listen := net.JoinHostPort(ns.Addr.String(), "8090")
	bin, args := ns.Command(stacktest.Build(t, "../../cmd/gateway"),
		"-kafka-brokers", strings.Join(cluster.Kafka.Brokers, ","), "-admin-addr", admin, "-log-format", "text",
		"-gateway-id", "b", "-listen-addr", listen, "-history-url", p.HistoryURL,
		"-partitions", "2", "-replication-factor", "3")
	stacktest.Start(t, "isolated gateway", bin, []string{"SEQCHAT_TOKEN_KEY=" + string(tokenKey), "SEQCHAT_SERVICE_TOKEN=" + serviceToken}, args...)
	stacktest.Eventually(t, time.Minute, "the isolated gateway ready", func() bool { return stacktest.Ready(admin) })

	gen, err := loadgen.New(loadgen.Config{Gateways: []string{urlA, "ws://" + listen + "/ws"}, TokenKey: tokenKey,
		Users: 20, GroupSize: 5, Groups: 3, DMs: 3, Rate: 12, Duration: 45 * time.Second, Drain: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait := runInBackground(t, gen)
	stacktest.Eventually(t, time.Minute, "100 sends fired", func() bool { return gen.Progress().Sends >= 100 })
	before := gen.Progress().Reconnects
	restored := partition(t, ns, func(cut time.Time) {
		// Its devices move to the other gateway while it is away.
		stacktest.Eventually(t, partitionLength, "the isolated gateway's devices reconnected elsewhere", func() bool {
			return gen.Progress().Reconnects > before
		})
		moved := time.Since(cut)
		all := delivered(t, gen, cut)
		t.Logf("while it was cut off: devices reconnecting elsewhere after %v, everything delivered after %v",
			moved.Round(time.Millisecond), all.Round(time.Millisecond))
	})
	stacktest.Eventually(t, time.Minute, "the isolated gateway ready again", func() bool { return stacktest.Ready(admin) })
	ready := time.Since(restored)
	all := delivered(t, gen, restored)
	t.Logf("after the link came back: ready in %v, everything delivered in %v; %d devices reconnected",
		ready.Round(time.Millisecond), all.Round(time.Millisecond), gen.Progress().Reconnects-before)

	res := wait()
	checkRun(t, res, 450)
	if res.Counts.Reconnects < 5 {
		t.Errorf("%d reconnects: the isolated gateway's devices (about half of 20) should have moved", res.Counts.Reconnects)
	}
	checkLog(t, cluster.Kafka, p.Topics.Sequenced, gen)
}
