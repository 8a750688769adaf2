package fanout

import (
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func presenceRecord(t *testing.T, partition int32, offset int64, p *imv1.Presence) *sarama.ConsumerMessage {
	t.Helper()
	b, err := imv1.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ConsumerMessage{Partition: partition, Offset: offset, Value: b}
}

// TestConnectsAreToldOnce: each worker gets every recent connection once,
// a worker starting late gets those still remembered, and neither an
// offline, a stale online nor a connection older than the window counts.
func TestConnectsAreToldOnce(t *testing.T) {
	v := newPresenceView(slog.New(slog.DiscardHandler))
	now := time.Now().UnixMilli()
	online := func(user string, epoch uint64, at int64) *imv1.Presence {
		return &imv1.Presence{Version: 1, UserId: user, DeviceId: "d", GatewayId: "gw", Online: true, Epoch: epoch, AtMs: at}
	}
	v.apply(presenceRecord(t, 0, 0, online("ann", 2, now)))
	v.apply(presenceRecord(t, 0, 1, online("ann", 1, now)))                                // stale: an older connection
	v.apply(presenceRecord(t, 1, 0, online("old", 1, now-connectWindow.Milliseconds()-1))) // replayed at start
	seen, cs := v.connectsSince(0)
	if len(cs) != 1 || cs[0].UserId != "ann" || cs[0].Epoch != 2 {
		t.Fatalf("connects %v, want ann's epoch 2 only", cs)
	}
	v.apply(presenceRecord(t, 1, 1, online("bob", 1, now)))
	v.apply(presenceRecord(t, 1, 2, &imv1.Presence{Version: 1, UserId: "bob", DeviceId: "d", GatewayId: "gw", Epoch: 1, AtMs: now}))
	next, cs := v.connectsSince(seen)
	if len(cs) != 1 || cs[0].UserId != "bob" {
		t.Fatalf("connects since the first call %v, want bob's only", cs)
	}
	if again, cs := v.connectsSince(next); len(cs) != 0 || again != next {
		t.Fatalf("connects told twice: %v", cs)
	}
	if _, cs := v.connectsSince(0); len(cs) != 2 {
		t.Fatalf("a new worker got %d connects, want the 2 remembered", len(cs))
	}
}
