package gateway_test

import (
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/stacktest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// TestFailedHelloWritesNoPresence: a hello that fails for an internal
// reason (history cannot say where the device resumes) is closed with
// unavailable and leaves no presence behind (it had been writing an
// "offline" with no "online" before it).
func TestFailedHelloWritesNoPresence(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("nohistory", func(c *gateway.Config) {
		c.History = &gateway.HistoryClient{BaseURL: "http://127.0.0.1:1", Token: serviceToken} // nothing listens
	})
	c := p.connect("nohistory", "zoe", "phone")
	c.sendJSON(map[string]any{"type": "hello", "token": p.token("zoe", "phone", time.Hour)})
	if f := c.expectCode("error", "unavailable"); !f.Fatal {
		t.Errorf("hello without history: %+v, want a fatal unavailable", f)
	}
	c.waitClosed()

	// Once the gateway has stopped, every connection's last word is
	// written: the presence topic must hold nothing of zoe.
	p.gateways["nohistory"].stop()
	for _, m := range stacktest.Records(t, p.topics.Presence) {
		var pr imv1.Presence
		if err := imv1.Unmarshal(m.Value, &pr); err == nil && pr.UserId == "zoe" {
			t.Errorf("presence record %+v for a hello that failed", &pr)
		}
	}
}
