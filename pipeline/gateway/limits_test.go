package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// refusedBeforeWelcome checks that c was turned away with a fatal error of
// code and close code closeCode, and never got welcome.
func refusedBeforeWelcome(t *testing.T, c *client, code string, closeCode int) frame {
	t.Helper()
	f := c.expectCode("error", code)
	if got := c.waitClosed(); got != closeCode {
		t.Errorf("%s/%s closed with %d, want %d", c.user, c.device, got, closeCode)
	}
	if !f.Fatal {
		t.Errorf("%s/%s: %+v is not fatal", c.user, c.device, f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.frames {
		if g.Type == "welcome" {
			t.Errorf("%s/%s got welcome and then %+v", c.user, c.device, f)
		}
	}
	return f
}

// TestConnectionLimitRefusesBeforeWelcome: past MaxConnections a new
// connection gets a fatal unavailable with a retry hint, closed with 1013,
// and the connections open go on; once one closes, a new one is taken.
func TestConnectionLimitRefusesBeforeWelcome(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("small", func(c *gateway.Config) { c.MaxConnections = 2 })
	alice := p.dial("small", "alice", "phone", nil)
	bob := p.dial("small", "bob", "phone", nil)

	carol := p.connect("small", "carol", "phone")
	carol.sendJSON(map[string]any{"type": "hello", "token": p.token("carol", "phone", time.Hour)})
	f := refusedBeforeWelcome(t, carol, "unavailable", websocket.CloseTryAgainLater)
	if f.RetryAfterMs <= 0 || !strings.Contains(string(f.Message), "connections limit") {
		t.Errorf("refusal %+v: want a retry hint and the limit named", f)
	}

	// The connections open are served as before.
	dm := "dm:alice:bob"
	alice.send(dm, "m1", 1, "still here")
	alice.waitFrame("accepted", func(f frame) bool { return f.Type == "accepted" })
	bob.waitSeqs(dm, 1)

	alice.ws.Close()
	alice.waitClosed()
	dave := welcomedEventually(t, p, "small", "dave", "phone")
	dave.send("dm:bob:dave", "m2", 1, "hello bob")
	dave.waitFrame("accepted", func(f frame) bool { return f.Type == "accepted" })
	bob.waitSeqs("dm:bob:dave", 1)
}

// TestConnectionsPerUserLimit: a user past MaxConnectionsPerUser is
// refused with too_many_connections (1008) before welcome; other users,
// and the user's connections open, go on; closing one makes room.
func TestConnectionsPerUserLimit(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("peruser", func(c *gateway.Config) { c.MaxConnectionsPerUser = 2 })
	phone := p.dial("peruser", "erin", "phone", nil)
	p.dial("peruser", "erin", "laptop", nil)

	tablet := p.connect("peruser", "erin", "tablet")
	tablet.sendJSON(map[string]any{"type": "hello", "token": p.token("erin", "tablet", time.Hour)})
	f := refusedBeforeWelcome(t, tablet, "too_many_connections", websocket.ClosePolicyViolation)
	if !strings.Contains(string(f.Message), "erin has 2 connections") {
		t.Errorf("refusal %+v: want the user and the limit named", f)
	}
	frank := p.dial("peruser", "frank", "phone", nil)
	phone.send("dm:erin:frank", "m1", 1, "hi frank")
	phone.waitFrame("accepted", func(f frame) bool { return f.Type == "accepted" })
	frank.waitSeqs("dm:erin:frank", 1)

	phone.ws.Close()
	phone.waitClosed()
	welcomedEventually(t, p, "peruser", "erin", "tablet")
}

// welcomedEventually connects user/device to gw and says hello until the
// first answer is welcome (a refused place is released only once the
// closed connection's handler has finished).
func welcomedEventually(t *testing.T, p *pipeline, gw, user, device string) *client {
	t.Helper()
	var welcomed *client
	stacktest.Eventually(t, 30*time.Second, user+"/"+device+" welcomed", func() bool {
		c := p.connect(gw, user, device)
		c.sendJSON(map[string]any{"type": "hello", "token": p.token(user, device, time.Hour)})
		c.waitFor("welcome or refusal", func() bool { return len(c.frames) > 0 })
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.frames[0].Type != "welcome" {
			return false
		}
		welcomed = c
		return true
	})
	return welcomed
}

// TestMemoryLimitRefuses: a gateway holding more memory than MemoryLimit
// takes no new connection (a fatal unavailable naming the limit, 1013).
func TestMemoryLimitRefuses(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("full", func(c *gateway.Config) { c.MemoryLimit = 1 })
	c := p.connect("full", "gina", "phone")
	c.sendJSON(map[string]any{"type": "hello", "token": p.token("gina", "phone", time.Hour)})
	f := refusedBeforeWelcome(t, c, "unavailable", websocket.CloseTryAgainLater)
	if f.RetryAfterMs <= 0 || !strings.Contains(string(f.Message), "memory limit") {
		t.Errorf("refusal %+v: want a retry hint and the memory limit named", f)
	}
}
