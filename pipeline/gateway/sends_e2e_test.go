package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestPingsAreAnsweredWhileASendWaits: a send that waits for the broker
// does not stop the connection's reads (heldSends). While two sends
// wait, the device's ping is answered; when the view is fresh again both
// are accepted and delivered in the order they were sent. (With the
// sends submitted by the read loop, the pong came only after the first
// send's answer, and devices dropped their silent connections.)
func TestPingsAreAnsweredWhileASendWaits(t *testing.T) {
	_, f, alice := heldSends(t)
	dm := "dm:alice:bob"
	alice.send(dm, "m1", 1, "first")
	alice.send(dm, "m2", 2, "second")
	alice.sendJSON(map[string]any{"type": "ping", "id": "p1"})
	alice.waitFrame("pong", func(f frame) bool { return f.Type == "pong" && f.ID == "p1" })
	alice.mu.Lock()
	for _, f := range alice.frames {
		if f.ClientMsgID == "m1" || f.Ref == "m1" || f.ClientMsgID == "m2" || f.Ref == "m2" {
			t.Errorf("answered while the control view was stale: %+v", f)
		}
	}
	alice.mu.Unlock()

	stacktest.Run(t, "follower again", f.Run)
	for _, cmid := range []string{"m1", "m2"} {
		if a := alice.answer(cmid, 0); a.Type != "accepted" {
			t.Fatalf("%s answered %+v, want accepted", cmid, a)
		}
	}
	alice.waitSeqs(dm, 2)
	alice.mu.Lock()
	defer alice.mu.Unlock()
	var order []string
	for _, f := range alice.frames {
		if f.Type == "msg" {
			order = append(order, f.ClientMsgID)
		}
	}
	if len(order) != 2 || order[0] != "m1" || order[1] != "m2" || alice.seqs[dm][0] != 1 || alice.seqs[dm][1] != 2 {
		t.Fatalf("delivered %v with seqs %v, want m1, m2 at 1, 2", order, alice.seqs[dm])
	}
}

// TestShutdownDoesNotWaitForAHeldSend: a gateway stopped while a send
// waits for the broker stops without waiting the write timeout for it
// (the send's answer could reach no one; its client sends it again).
func TestShutdownDoesNotWaitForAHeldSend(t *testing.T) {
	p, _, alice := heldSends(t)
	n := alice.frameCount()
	alice.send("dm:alice:bob", "m1", 1, "held")
	alice.sendJSON(map[string]any{"type": "ping", "id": "p1"})
	alice.waitFrame("pong", func(f frame) bool { return f.Type == "pong" && f.ID == "p1" })
	start := time.Now()
	p.gateways["a"].stop()
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the gateway took %v to stop with a send held (write timeout %v)", took, heldWriteTimeout)
	}
	alice.waitClosed()
	alice.mu.Lock()
	defer alice.mu.Unlock()
	for _, f := range alice.frames[n:] {
		if f.Type == "accepted" {
			t.Fatalf("a held send was accepted: %+v", f)
		}
	}
}

// heldWriteTimeout is the write timeout of heldSends' gateway: longer
// than any of these tests waits.
const heldWriteTimeout = time.Minute

// heldSends starts a pipeline and gateway "a" whose sends wait the way
// they do through a broker restart: its view of the control topic is
// stale (the follower stopped), so ingest holds them until the view is
// fresh again (f.Run) or heldWriteTimeout. alice/phone is connected.
func heldSends(t *testing.T) (*pipeline, *control.Follower, *client) {
	p := startPipeline(t)
	controlTopic := stacktest.Name(t, "control")
	stacktest.CreateTopics(t, control.Spec(controlTopic, kafkawire.Layout{}))
	f := control.NewFollower(control.FollowerConfig{Kafka: stacktest.Kafka(t), Topic: controlTopic, Topics: p.topics,
		Poll: 100 * time.Millisecond})
	stopFollower := stacktest.Run(t, "follower", f.Run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	const stale = time.Second
	p.startGateway("a", func(c *gateway.Config) {
		c.Control = f
		c.Ingest.ControlStale, c.Ingest.WriteTimeout = stale, heldWriteTimeout
	})
	alice := p.dial("a", "alice", "phone", nil)
	stopFollower()
	stacktest.Eventually(t, 10*time.Second, "the view older than ControlStale", func() bool {
		age, ok := f.Age()
		return ok && age > stale
	})
	return p, f, alice
}
