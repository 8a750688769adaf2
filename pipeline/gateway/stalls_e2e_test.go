package gateway_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestStalledDeliveryIsRepairedFromHistory: issue 12's stall detection.
// The fanout stops (no error reaches the gateway: its topic just goes
// quiet) while devices keep sending in a dm and a group; every device
// still gets every entry, in order and once, from history within the
// bound, because the sequencer's heartbeats say how far each conversation
// went. A member who left gets nothing after its leave. When the fanout
// comes back, its replays are not shown twice.
func TestStalledDeliveryIsRepairedFromHistory(t *testing.T) {
	p := startPipeline(t, func(c *sequencer.Config) { c.HeadsInterval = 200 * time.Millisecond })
	reg := prometheus.NewRegistry()
	const stallAfter = time.Second
	p.startGateway("a", func(c *gateway.Config) { c.StallAfter = stallAfter; c.Registerer = reg })
	alice, bob, carol := p.dial("a", "alice", "phone", nil), p.dial("a", "bob", "phone", nil), p.dial("a", "carol", "phone", nil)
	group, dm := "g:stall", "dm:alice:bob"
	alice.control(group, "create", 1, map[string]any{"op": "create_group", "title": "stall", "user_ids": []string{"bob", "carol"}})
	alice.send(dm, "d1", 1, "hi")
	for _, c := range []*client{alice, bob, carol} {
		c.waitSeqs(group, 1)
	}
	carol.control(group, "leave", 1, map[string]any{"op": "leave"})
	for _, c := range []*client{alice, bob, carol} {
		c.waitSeqs(group, 2) // created, carol left
	}
	alice.waitSeqs(dm, 1)
	bob.waitSeqs(dm, 1)

	p.stopFanout()
	const n = 20
	for i := 1; i <= n; i++ {
		alice.send(dm, fmt.Sprintf("a%d", i), uint64(1+i), "stalled")
		bob.send(group, fmt.Sprintf("b%d", i), uint64(i), "stalled")
	}
	for i := 1; i <= n; i++ {
		alice.answer(fmt.Sprintf("a%d", i), 0)
		bob.answer(fmt.Sprintf("b%d", i), 0)
	}
	sent := time.Now()
	// Heartbeat, sweep, the bound, a history read: a few seconds; the
	// fanout is down, so nothing else delivers them.
	const bound = stallAfter + 9*time.Second
	for _, c := range []*client{alice, bob} {
		c.waitSeqs(dm, 1+n)
		c.waitSeqs(group, 2+n)
	}
	if took := time.Since(sent); took > bound {
		t.Fatalf("stalled devices had everything %v after the last send, bound %v", took, bound)
	}
	if got := stacktest.Gathered(t, reg, "seqchat_gateway_stalls_repaired_total"); got < 4 {
		t.Fatalf("stalls repaired: %v, want at least 4 (two devices, two conversations)", got)
	}

	p.startFanout()
	alice.send(dm, "after", 2+n, "live again")
	for _, c := range []*client{alice, bob} {
		c.waitSeqs(dm, 2+n)
	}
	bob.send(group, "after", 1+n, "live again")
	for _, c := range []*client{alice, bob} {
		c.waitSeqs(group, 3+n)
	}
	for _, c := range []*client{alice, bob} {
		if got := c.got(dm); !slices.Equal(got, seqRange(1, 2+n)) {
			t.Errorf("%s got dm seqs %v, want 1..%d once each", c.user, got, 2+n)
		}
		if got := c.got(group); !slices.Equal(got, seqRange(1, 3+n)) {
			t.Errorf("%s got group seqs %v, want 1..%d once each", c.user, got, 3+n)
		}
	}
	if got := carol.got(group); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("carol, who left at 2, got %v", got)
	}
	for _, c := range []*client{alice, bob, carol} {
		c.mu.Lock()
		for _, f := range c.frames {
			if f.Type == "error" {
				t.Errorf("%s got an error: %+v", c.user, f)
			}
		}
		c.mu.Unlock()
	}
}
