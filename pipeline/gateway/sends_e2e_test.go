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
// does not stop the connection's reads. Sends wait here the way they do
// through a broker restart: the gateway's view of the control topic is
// stale (its follower stopped), so ingest holds them. While two sends
// wait, the device's ping is answered; when the view is fresh again both
// are accepted and delivered in the order they were sent. (With the
// sends submitted by the read loop, the pong came only after the first
// send's answer, and devices dropped their silent connections.)
func TestPingsAreAnsweredWhileASendWaits(t *testing.T) {
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
		c.Ingest.ControlStale, c.Ingest.WriteTimeout = stale, time.Minute
	})
	alice := p.dial("a", "alice", "phone", nil)
	dm := "dm:alice:bob"

	stopFollower()
	stacktest.Eventually(t, 10*time.Second, "the view older than ControlStale", func() bool {
		age, ok := f.Age()
		return ok && age > stale
	})
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
