package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestHelloWaitingForHistoryLeavesConsistentPresence: a hello whose
// history read keeps failing gets welcome and waits (it is not dropped);
// when the gateway stops, it is closed with unavailable (1013). It was
// announced online before the read (the fanout's notices place a device
// without history), so its presence ends offline, and never is an
// "offline" with no "online" before it (a failed hello once wrote that).
// Hellos refused before welcome write none (limits_test.go).
func TestHelloWaitingForHistoryLeavesConsistentPresence(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("nohistory", func(c *gateway.Config) {
		c.History = &gateway.HistoryClient{BaseURL: "http://127.0.0.1:1", Token: serviceToken} // nothing listens
	})
	c := p.connect("nohistory", "zoe", "phone")
	c.sendJSON(map[string]any{"type": "hello", "token": p.token("zoe", "phone", time.Hour)})
	c.waitFrame("welcome", func(f frame) bool { return f.Type == "welcome" })

	// Once the gateway has stopped, every connection's last word is
	// written: zoe's presence is online, then offline.
	p.gateways["nohistory"].stop()
	if f := c.expectCode("error", "unavailable"); !f.Fatal || !strings.Contains(string(f.Message), "shutting down") {
		t.Errorf("hello waiting for history at shutdown: %+v, want a fatal unavailable saying why", f)
	}
	if code := c.waitClosed(); code != websocket.CloseTryAgainLater {
		t.Errorf("closed with %d, want %d", code, websocket.CloseTryAgainLater)
	}
	var states []bool
	for _, m := range stacktest.Records(t, p.topics.Presence) {
		var pr imv1.Presence
		if err := imv1.Unmarshal(m.Value, &pr); err == nil && pr.UserId == "zoe" {
			states = append(states, pr.Online)
		}
	}
	if fmt.Sprint(states) != "[true false]" {
		t.Errorf("zoe's presence records say online %v, want [true false]", states)
	}
}

// TestHelloWaitsForHistory: while history fails, a device that said hello
// keeps its connection (welcome promised to serve it); once history
// answers, it is caught up and gets live messages on that connection.
func TestHelloWaitsForHistory(t *testing.T) {
	p := startPipeline(t)
	target, err := url.Parse(p.history)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			http.Error(w, "history is down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	p.startGateway("direct")
	p.startGateway("flaky", func(c *gateway.Config) {
		c.History = &gateway.HistoryClient{BaseURL: flaky.URL, Token: serviceToken}
	})

	dm := "dm:alice:zoe"
	alice := p.dial("direct", "alice", "phone", nil)
	alice.send(dm, "m1", 1, "before zoe connects")
	alice.waitFrame("accepted m1", func(f frame) bool { return f.Type == "accepted" && f.ClientMsgID == "m1" })
	p.waitHistory(dm, 1)
	// Routed too: a fanout behind the history sink would tell zoe's
	// gateway she has no conversation yet, and m1 would reach her live,
	// with no history read at all.
	alice.waitSeqs(dm, 1)

	zoe := p.connect("flaky", "zoe", "phone")
	zoe.sendJSON(map[string]any{"type": "hello", "token": p.token("zoe", "phone", time.Hour)})
	zoe.waitFrame("welcome", func(f frame) bool { return f.Type == "welcome" })
	stacktest.Eventually(t, 30*time.Second, "three failed history reads", func() bool { return refused.Load() >= 3 })
	select {
	case <-zoe.closed:
		t.Fatalf("the connection was dropped while history failed; frames %+v", zoe.frames)
	default:
	}

	down.Store(false)
	zoe.waitSeqs(dm, 1)
	alice.send(dm, "m2", 2, "zoe is here")
	zoe.waitSeqs(dm, 2)
	if got := zoe.got(dm); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("zoe got seqs %v of %s, want [1 2]", got, dm)
	}
}
