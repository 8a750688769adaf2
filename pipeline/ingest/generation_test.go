package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestSubmitFollowsTheWriteGeneration: with the service's view of the
// control topic, sends go to generation 1's raw topic until generation 2
// is published writing, then to generation 2's, without a restart; once
// the view has not reached the topic's end for ControlStale (its follower
// stopped), sends wait for a fresh view: refused with ErrUnavailable after
// WriteTimeout, nothing written, and written once the follower reads the
// topic again (a broker restart stops the follower for a while).
func TestSubmitFollowsTheWriteGeneration(t *testing.T) {
	k := stacktest.Kafka(t)
	raw := stacktest.Topic(t, 4, nil)
	raw2 := generation.Topics(kafkawire.Topics{Raw: raw}, 2).Raw
	stacktest.CreateTopics(t, kafkawire.TopicSpec{Name: raw2, Partitions: 8, ReplicationFactor: 1})
	controlTopic := stacktest.Name(t, "control")
	stacktest.CreateTopics(t, control.Spec(controlTopic, kafkawire.Layout{}))
	f := control.NewFollower(control.FollowerConfig{Kafka: k, Topic: controlTopic, Topics: kafkawire.Topics{Raw: raw}, Poll: 100 * time.Millisecond})
	stopFollower := stacktest.Run(t, "follower", f.Run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	const stale = time.Second
	const writeTimeout = 2 * time.Second
	ing := newIngester(t, ingest.Config{Topic: raw, Control: f, ControlStale: stale, WriteTimeout: writeTimeout})
	send := func(n int) ingest.Send {
		s := dmSend()
		s.ClientMsgID, s.ClientSeq = fmt.Sprintf("m-%d", n), uint64(n)
		return s
	}
	for n := 1; n <= 2; n++ {
		if err := ing.Submit(ctx, send(n)); err != nil {
			t.Fatal(err)
		}
	}

	record := generation.Initial(4)
	for _, phase := range []imv1.GenerationPhase{generation.Prepared, generation.Writing} {
		var err error
		if record, err = generation.WithPhase(record, &imv1.Generation{Id: 2, Partitions: 8}, phase, time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
		_, changed := f.Current()
		if err := control.Publish(k, controlTopic, record); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("the follower did not see %v", phase)
		}
	}
	for n := 3; n <= 4; n++ {
		if err := ing.Submit(ctx, send(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ing.Ready(ctx); err != nil {
		t.Fatalf("Ready with a fresh view: %v", err)
	}
	for topic, want := range map[string][]string{raw: {"m-1", "m-2"}, raw2: {"m-3", "m-4"}} {
		got := readRaw(t, topic, len(want))
		for i, r := range got {
			if r.rec.ClientMsgId != want[i] {
				t.Fatalf("%s holds %s at %d, want %v", topic, r.rec.ClientMsgId, i, want)
			}
		}
		if n := recordsIn(t, topic); n != int64(len(want)) {
			t.Fatalf("%s holds %d records, want %d", topic, n, len(want))
		}
	}

	stopFollower()
	stacktest.Eventually(t, 10*time.Second, "the view older than ControlStale", func() bool {
		age, ok := f.Age()
		return ok && age > stale
	})
	start := time.Now()
	if err := ing.Submit(ctx, send(5)); !errors.Is(err, ingest.ErrUnavailable) {
		t.Fatalf("Submit with a stale view = %v, want ErrUnavailable", err)
	}
	if waited := time.Since(start); waited < writeTimeout {
		t.Fatalf("Submit with a stale view refused after %v, want it to wait WriteTimeout (%v) for a fresh view", waited, writeTimeout)
	}
	readyCtx, readyCancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer readyCancel()
	if err := ing.Ready(readyCtx); err == nil {
		t.Fatal("Ready with a stale view: no error")
	}
	if n1, n2 := recordsIn(t, raw), recordsIn(t, raw2); n1 != 2 || n2 != 2 {
		t.Fatalf("after a refused send the raw topics hold %d and %d records, want 2 and 2", n1, n2)
	}

	// A send made while the view is stale goes to generation 2 once the
	// follower is back.
	submitted := make(chan error, 1)
	go func() { submitted <- ing.Submit(ctx, send(6)) }()
	stacktest.Run(t, "follower again", f.Run)
	if err := <-submitted; err != nil {
		t.Fatalf("Submit while the follower came back: %v", err)
	}
	got := readRaw(t, raw2, 3)
	if id := got[2].rec.ClientMsgId; id != "m-6" {
		t.Fatalf("%s holds %s third, want m-6", raw2, id)
	}
	if n1, n2 := recordsIn(t, raw), recordsIn(t, raw2); n1 != 2 || n2 != 3 {
		t.Fatalf("the raw topics hold %d and %d records, want 2 and 3", n1, n2)
	}
}
