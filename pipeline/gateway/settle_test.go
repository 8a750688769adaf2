package gateway_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
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

// TestSettlesAcrossGenerations: during a repartition (4 -> 8 partitions)
// both generations' fanouts route and send their notices, each of its own
// sequenced topic and partition count. An entry generation 2 sequenced and
// routed before bob connected, and that its history sink stored only
// after bob's hello, still reaches bob, with the timed passes off and no
// later entry to reveal the gap: the gateway waits for the notices of
// every routing generation (the control topic says which) and history's
// progress per topic. Before, it kept the partition count of whichever
// notice came first and dropped the other generation's notices.
func TestSettlesAcrossGenerations(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("gw", func(c *gateway.Config) { c.SettleDelay = time.Hour })
	dm := "dm:alice:bob"
	alice := p.dial("gw", "alice", "phone", nil)
	alice.send(dm, "m1", 1, "sequenced by generation 1")
	alice.waitSeqs(dm, 1)
	p.waitHistory(dm, 1)

	// Generation 2, started and switched to as imctl repartition does it.
	gen2 := &imv1.Generation{Id: 2, Partitions: 8}
	stacktest.CreateTopics(t, generation.Specs(p.topics, kafkawire.Layout{}, gen2.Id, gen2.Partitions)...)
	sc, fc, hc := p.pl.Sequencer, p.pl.Fanout, p.pl.Sink
	sc.Generation, fc.Generation, hc.Generation = gen2.Id, gen2.Id, gen2.Id
	seq, err := sequencer.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	fan, err := fanout.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	p.pl.Run("sequencer 2", seq.Run)
	p.pl.Run("fanout 2", fan.Run)
	stacktest.CreateTopics(t, control.Spec(p.pl.ControlTopic, kafkawire.Layout{}))
	record, _ := p.pl.Control.Current()
	publish := func(gen *imv1.Generation, phase imv1.GenerationPhase) {
		t.Helper()
		var err error
		if record, err = generation.WithPhase(record, gen, phase, time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if err := control.Publish(p.pl.Kafka, p.pl.ControlTopic, record); err != nil {
			t.Fatal(err)
		}
	}
	publish(gen2, generation.Prepared)
	publish(gen2, generation.Writing)
	if _, err := repartition.WriteFences(p.pl.Kafka, p.topics.Raw, []int32{0, 1, 2, 3}, gen2); err != nil {
		t.Fatal(err)
	}
	publish(gen2, generation.Imported)
	stacktest.Eventually(t, 30*time.Second, "the gateway's view of generation 2 sequencing", func() bool {
		g, _ := p.pl.Control.Current()
		return proto.Equal(g, record)
	})

	// m2 is forwarded to generation 2 and routed there while its sink is
	// not running (it starts below).
	alice.send(dm, "m2", 2, "sequenced by generation 2, routed before bob connects, stored after")
	alice.waitSeqs(dm, 2)
	bob := p.dial("gw", "bob", "laptop", nil)
	bob.waitSeqs(dm, 1)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("bob got %v before history stored seq 2, want [1]", got)
	}

	sink, err := history.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	p.pl.Run("history sink 2", sink.Run)
	bob.waitSeqs(dm, 2)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("bob got %v, want [1 2]", got)
	}
	alice.send(dm, "m3", 3, "live, from generation 2")
	bob.waitSeqs(dm, 3)
	if got := bob.got(dm); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("bob got %v, want [1 2 3]", got)
	}
}
