//go:build failover

package sequencer_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
)

// TestRepartitionSurvivesSIGKILL repartitions 4 -> 8 under load with both
// generations' sequencers as processes, and kills each with SIGKILL at the
// moments of the hand-over: the old one right after the fences are
// written (the fence commits in it or in its restart), the new one while
// it waits for the fences to import, the new one again after it imported, and the old one again
// once it is a forwarder (restored from its fence entry). Every record of
// both logs is checked as in TestRepartitionHandsOverEveryConversation.
func TestRepartitionSurvivesSIGKILL(t *testing.T) {
	base := newTopics(t, 4)
	gens := []gen{{1, 4, generation.Topics(base, 1)}, {2, 8, generation.Topics(base, 2)}}
	stacktest.CreateTopics(t, generation.Specs(base, kafkawire.Layout{}, 2, 8)...)
	logs := followGenerations(t, gens)
	procs := map[uint32]*proc{}
	start := func(g uint32, incarnation int) {
		procs[g] = startProc(t, fmt.Sprintf("g%d-%d", g, incarnation), base,
			"-generation", fmt.Sprint(g), "-instance-id", fmt.Sprintf("repartition-g%d", g))
	}
	kill := func(g uint32, incarnation int, when string) {
		t.Helper()
		procs[g].Kill()
		t.Logf("SIGKILL of generation %d's sequencer %s", g, when)
		start(g, incarnation)
	}
	start(1, 0)
	start(2, 0)
	progress := func(n int) {
		t.Helper()
		logs.mu.Lock()
		target := logs.records() + n
		logs.mu.Unlock()
		logs.waitFor(t, 2*time.Minute, fmt.Sprintf("%d more records", n), func(g *genLogs) bool { return g.records() >= target })
	}

	w := newWorkload(23, 40, 30, 40)
	var raw atomic.Pointer[string]
	raw.Store(&gens[0].topics.Raw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.send(t, func() string { return *raw.Load() }, 2, 5, 20*time.Millisecond)
	}()
	pr := &probe{t: t, conv: "dm:probe-a:probe-b", recs: map[uint64]*imv1.RawRecord{}}
	pr.send(gens[0].topics.Raw, 5)

	progress(300)
	if _, err := repartition.WriteFences(stacktest.Kafka(t), gens[0].topics.Raw, []int32{0, 1, 2, 3},
		&imv1.Generation{Id: 2, Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	pr.send(gens[0].topics.Raw, 5) // forwarded
	kill(1, 1, "right after the fences were written")
	kill(2, 1, "while it waits for the fences to import")
	raw.Store(&gens[1].topics.Raw)
	pr.send(gens[1].topics.Raw, 5)
	logs.waitFor(t, 2*time.Minute, "the probe's seq 15", func(g *genLogs) bool { return g.keys["probe-a/probe-15"] > 0 })
	progress(300)
	kill(2, 2, "after it imported")
	kill(1, 2, "as a forwarder")
	pr.send(gens[0].topics.Raw, 5) // forwarded by the restarted forwarder
	pr.resend(gens[0].topics.Raw, 2)
	pr.resend(gens[1].topics.Raw, 8)

	<-done
	logs.waitFor(t, 3*time.Minute, "an outcome for every send and resend", func(g *genLogs) bool {
		for _, key := range w.keys {
			if g.keys[key] == 0 {
				return false
			}
		}
		return g.keys["probe-a/probe-20"] > 0 && g.keys["probe-a/probe-2"] == 2 && g.keys["probe-a/probe-8"] == 2
	})
	for _, p := range procs {
		p.stop(t)
	}
	l := logs.finish(t)
	verifyExactlyOnce(t, l, w)
	for cs := uint64(1); cs <= pr.next; cs++ {
		if entry, n := l.entryOf(fmt.Sprintf("probe-a/probe-%d", cs)); n != 1 || entry.Seq != cs {
			t.Errorf("probe send %d: %d entries, seq %d", cs, n, entry.GetSeq())
		}
	}
	spans := map[int]int{}
	for _, gs := range logs.generationsOf() {
		spans[len(gs)]++
	}
	t.Logf("conversations by the number of generations that sequenced them: %v", spans)
	if spans[2] == 0 {
		t.Error("no conversation was sequenced by both generations")
	}
}
