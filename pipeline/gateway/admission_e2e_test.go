package gateway_test

import (
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// TestOverloadedGatewayRefusesWithARetryHint runs a gateway whose
// admission limit no pipeline meets (1ns): right after a send is accepted,
// the next one is refused with unavailable and a retry_after_ms hint; the
// refused attempts consume no seq; resent after the hint, once nothing is
// in flight, it is accepted and delivered exactly once.
func TestOverloadedGatewayRefusesWithARetryHint(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("a", func(c *gateway.Config) { c.OverloadDelay = time.Nanosecond })
	c := p.dial("a", "olga", "d", nil)
	c.control("g:busy", "create", 1, map[string]any{"op": "create_group"})
	// Sent at once: the creation is accepted and in flight, nothing came
	// back yet, so the pipeline counts as behind.
	c.send("g:busy", "m1", 2, "hello")
	f := c.waitFrame("m1 refused", func(f frame) bool { return f.Type == "error" && f.Ref == "m1" })
	if f.Code != gateway.CodeUnavailable || f.RetryAfterMs < 1 || f.Fatal {
		t.Fatalf("m1 answered %+v, want a non-fatal unavailable with retry_after_ms", f)
	}
	c.waitSeqs("g:busy", 1) // the creation
	refusals := 1
	for deadline := time.Now().Add(time.Minute); ; refusals++ {
		c.mu.Lock()
		n := len(c.frames)
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("m1 still refused after %d attempts", refusals)
		}
		time.Sleep(time.Duration(f.RetryAfterMs) * time.Millisecond) // the protocol's hint, not synchronisation
		c.send("g:busy", "m1", 2, "hello")
		c.waitFor("an answer to m1", func() bool {
			for _, g := range c.frames[n:] {
				if (g.Type == "accepted" && g.ClientMsgID == "m1") || (g.Type == "error" && g.Ref == "m1") {
					f = g
					return true
				}
			}
			return false
		})
		if f.Type == "accepted" {
			break
		}
		if f.Code != gateway.CodeUnavailable {
			t.Fatalf("m1 answered %+v", f)
		}
	}
	c.waitSeqs("g:busy", 2)
	if got := c.got("g:busy"); len(got) != 2 || got[1] != 2 {
		t.Fatalf("seqs %v after %d refusals, want [1 2]: a refused attempt took a seq", got, refusals)
	}
	t.Logf("m1 accepted after %d refusals", refusals)
}
