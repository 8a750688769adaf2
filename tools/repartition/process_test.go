package repartition_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
)

// TestImctlSIGKILLedMidway runs `imctl repartition` as a process and
// SIGKILLs it twice, once the new generation is writing and once it
// sequences while the old one drains, running it again each time: the
// third run finishes the repartition, and a fourth finds nothing to do.
func TestImctlSIGKILLedMidway(t *testing.T) {
	prefix := stacktest.Name(t, "rpk")
	base := kafkawire.PrefixedTopics(prefix)
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(base, kafkawire.Layout{Partitions: 4})...)
	cfg := repartition.Config{Kafka: stacktest.Kafka(t), Topics: base, ControlTopic: base.Raw + ".control",
		SequencerGroup: base.Raw + ".sequencer", FanoutGroup: base.Raw + ".fanout", HistoryGroup: base.Raw + ".history"}
	startGenerations(t, cfg, 1, 2)
	send(t, base.Raw, 1, 3)
	status := func() string {
		var out bytes.Buffer
		c := cfg
		c.Out = &out
		r, err := repartition.New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	bin := stacktest.Build(t, "../../cmd/imctl")
	args := []string{"repartition", "-partitions", "8", "-quiet", "3s",
		"-kafka-brokers", strings.Join(stacktest.Kafka(t).BrokerList(), ","), "-topics-prefix", prefix,
		"-control-topic", cfg.ControlTopic, "-sequencer-group", cfg.SequencerGroup, "-fanout-group", cfg.FanoutGroup,
		"-history-group", cfg.HistoryGroup}
	for i, at := range []string{"generation 2: 8 partitions, writing", "generation 2: 8 partitions, sequencing"} {
		p := stacktest.Start(t, fmt.Sprintf("imctl-%d", i), bin, nil, args...)
		stacktest.Eventually(t, time.Minute, at, func() bool { return strings.Contains(status(), at) })
		p.Kill()
		t.Logf("SIGKILL once %q", at)
	}
	p := stacktest.Start(t, "imctl-last", bin, nil, args...)
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the last run did not finish within 2 minutes")
	}
	final := status()
	for _, want := range []string{"generation 1: 4 partitions, retired", "generation 2: 8 partitions, sequencing", "no repartition in progress"} {
		if !strings.Contains(final, want) {
			t.Errorf("status lacks %q:\n%s", want, final)
		}
	}
	again := stacktest.Start(t, "imctl-again", bin, nil, args...)
	<-again.Done()
	if !strings.Contains(status(), "no repartition in progress") {
		t.Error("a run after the end changed something")
	}
}

// TestImctlRefusesBadFlags: each wrong flag of `imctl repartition` is
// refused with a message naming it, exit status non-zero, before any
// broker is contacted.
func TestImctlRefusesBadFlags(t *testing.T) {
	bin := stacktest.Build(t, "../../cmd/imctl")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-partitions must be between 1 and"},
		{[]string{"-partitions", "0"}, "-partitions must be between 1 and"},
		{[]string{"-partitions", "8", "-replication-factor", "0"}, "-replication-factor must be at least 1"},
		{[]string{"-partitions", "8", "-quiet", "-1s"}, "-quiet must not be negative"},
	} {
		out, err := exec.Command(bin, append([]string{"repartition"}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("imctl repartition %v: %v, %q; want a failure saying %q", c.args, err, out, c.want)
		}
	}
}
