package gateway

import (
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestStallRuleFlagsOnlyWhatStaysBehind: a conversation is read from
// history once the device has stayed behind one head for StallAfter; not
// while it keeps up with a moving head, not after the user left, not
// before hello placed it.
func TestStallRuleFlagsOnlyWhatStaysBehind(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := testConn(64, 1, 1)
	c.log = slog.New(slog.DiscardHandler)
	c.g.metrics = newMetrics(reg)
	c.g.cfg.StallAfter = time.Second
	c.g.heads = newStreamHeads()
	at := func(delivered uint64) *convState { return &convState{reorder: NewReorder(delivered, 0), filling: true} }
	c.convs = map[string]*convState{"stuck": at(3), "moving": at(3), "head": at(5), "left": at(3), "unplaced": at(0)}
	c.convs["left"].left = true
	c.convs["unplaced"].unplaced = true
	beat := func(now time.Time, heads map[string]uint64) {
		sh := &imv1.StreamHeads{}
		for conv, seq := range heads {
			sh.Heads = append(sh.Heads, &imv1.ConversationHeadSeq{ConversationId: conv, Seq: seq})
		}
		c.g.heads.observe(sh, now)
	}
	targets := func() map[string]uint64 {
		out := map[string]uint64{}
		for conv, cs := range c.convs {
			out[conv] = cs.target
		}
		return out
	}
	stalls := func() float64 { return stacktest.Gathered(t, reg, "seqchat_gateway_stalls_repaired_total") }

	t0 := time.Now()
	beat(t0, map[string]uint64{"stuck": 5, "moving": 5, "head": 5, "left": 9, "unplaced": 5})
	c.repairStalls(t0.Add(500 * time.Millisecond))
	beat(t0.Add(800*time.Millisecond), map[string]uint64{"stuck": 6, "moving": 8})
	c.offer("moving", []Entry{{Seq: 4}, {Seq: 5}}) // keeps up, behind a newer head
	c.repairStalls(t0.Add(1100 * time.Millisecond))
	if got, want := targets(), map[string]uint64{"stuck": 6, "moving": 0, "head": 0, "left": 0, "unplaced": 0}; !maps.Equal(got, want) {
		t.Fatalf("targets after 1.1 s: %v, want %v", got, want)
	}
	if got := stalls(); got != 1 {
		t.Fatalf("stalls counted: %v, want 1", got)
	}
	// moving has been behind 8 since 0.8 s: stalled at 1.8 s, not before.
	c.repairStalls(t0.Add(1700 * time.Millisecond))
	if got := c.convs["moving"].target; got != 0 {
		t.Fatalf("moving flagged 0.9 s after its head: target %d", got)
	}
	c.repairStalls(t0.Add(1900 * time.Millisecond))
	if got := c.convs["moving"].target; got != 8 {
		t.Fatalf("moving target %d, want 8", got)
	}
	if got := stalls(); got != 2 {
		t.Fatalf("stalls counted: %v, want 2", got)
	}
}
