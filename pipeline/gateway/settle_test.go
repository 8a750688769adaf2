package gateway_test

import (
	"slices"
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// TestSettlesWhatWasRoutedBeforeTheDevice: an entry the fanout routed
// before it knew bob's device (to no device of his), and that history
// stored only after bob's hello and catch-up, still reaches bob: the
// gateway settles each partition once history has stored it up to the
// offset the fanout's RoutingStarted notice names, however long that
// takes. The timed settle passes are off here; they used to be the only
// way, and found nothing while history was behind.
func TestSettlesWhatWasRoutedBeforeTheDevice(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("gw", func(c *gateway.Config) { c.SettleDelay = time.Hour })
	dm := "dm:alice:bob"
	alice := p.dial("gw", "alice", "phone", nil)
	alice.send(dm, "m1", 1, "stored before bob connects")
	alice.waitSeqs(dm, 1)
	p.waitHistory(dm, 1)

	p.stopSink()
	alice.send(dm, "m2", 2, "routed before bob connects, stored after")
	alice.waitSeqs(dm, 2) // routed: bob had no device yet
	bob := p.dial("gw", "bob", "laptop", nil)
	bob.waitSeqs(dm, 1)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("bob got %v before history stored seq 2, want [1]", got)
	}

	p.startSink()
	bob.waitSeqs(dm, 2)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("bob got %v, want [1 2]", got)
	}
	alice.send(dm, "m3", 3, "live")
	bob.waitSeqs(dm, 3)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("bob got %v, want [1 2 3]", got)
	}
}
