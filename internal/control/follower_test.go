package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestFollowerSeesEachRecord: against the real broker, a follower started
// before the control topic exists serves generation 1 with the raw
// topic's count, then each record imctl publishes, signalling each change
// once; control.Read, started afresh, agrees; a later follower reads the
// latest record from the topic's start.
func TestFollowerSeesEachRecord(t *testing.T) {
	k := stacktest.Kafka(t)
	topics := kafkawire.Topics{Raw: stacktest.Topic(t, 4, nil)}
	controlTopic := stacktest.Name(t, "control")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := control.NewFollower(control.FollowerConfig{Kafka: k, Topic: controlTopic, Topics: topics, Poll: 100 * time.Millisecond})
	stacktest.Run(t, "follower", f.Run)

	g, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g, generation.Initial(4)) {
		t.Fatalf("before the topic exists: %v, want generation 1 of 4 partitions", g)
	}
	if age, ok := f.Age(); !ok || age > 5*time.Second {
		t.Fatalf("age %v %v of a view without a topic", age, ok)
	}
	// A fanout or history service names only its sequenced topic: the
	// count is that one's (co-partitioned with the raw topic).
	bySeq := control.NewFollower(control.FollowerConfig{Kafka: k, Topic: controlTopic, Topics: kafkawire.Topics{Sequenced: stacktest.Topic(t, 3, nil)},
		Poll: 100 * time.Millisecond})
	stacktest.Run(t, "follower by sequenced topic", bySeq.Run)
	if g, err := bySeq.Wait(ctx); err != nil || !proto.Equal(g, generation.Initial(3)) {
		t.Fatalf("a follower naming the sequenced topic only: %v %v, want generation 1 of 3 partitions", g, err)
	}
	stacktest.CreateTopics(t, control.Spec(controlTopic, kafkawire.Layout{}))

	client, err := sarama.NewClient(k.BrokerList(), k.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	records := []*imv1.Generations{generation.Initial(4)}
	for _, step := range []struct {
		gen   *imv1.Generation
		phase imv1.GenerationPhase
	}{
		{&imv1.Generation{Id: 2, Partitions: 8}, generation.Prepared},
		{&imv1.Generation{Id: 2, Partitions: 8}, generation.Writing},
		{&imv1.Generation{Id: 2, Partitions: 8}, generation.Imported},
		{&imv1.Generation{Id: 1, Partitions: 4}, generation.Retired},
	} {
		next, err := generation.WithPhase(records[len(records)-1], step.gen, step.phase, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, next)
	}
	for i, want := range records[1:] {
		_, changed := f.Current()
		if err := control.Publish(k, controlTopic, want); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("record %d: no change signalled", i+1)
		}
		got, _ := f.Current()
		if !proto.Equal(got, want) {
			t.Fatalf("record %d: follower has %v, want %v", i+1, got, want)
		}
		read, stored, err := control.Read(ctx, client, controlTopic, topics.Raw)
		if err != nil || !stored || !proto.Equal(read, want) {
			t.Fatalf("record %d: Read = %v %v %v", i+1, read, stored, err)
		}
	}
	// The same record again changes nothing: no signal, but the view is
	// read to the end again.
	_, changed := f.Current()
	if err := control.Publish(k, controlTopic, records[len(records)-1]); err != nil {
		t.Fatal(err)
	}
	late := control.NewFollower(control.FollowerConfig{Kafka: k, Topic: controlTopic, Topics: topics})
	stacktest.Run(t, "late follower", late.Run)
	g, err = late.Wait(ctx)
	if err != nil || !proto.Equal(g, records[len(records)-1]) {
		t.Fatalf("a follower started later: %v %v", g, err)
	}
	select {
	case <-changed:
		t.Fatal("an identical record signalled a change")
	default:
	}
}
