package fanout_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestWaitsForItsPresenceTopic: a fanout started before its presence topic
// exists (a topic created a moment ago is not yet known to every broker:
// a fresh `make up` saw the fanout exit on it) keeps trying, and becomes
// ready once the topic is there.
func TestWaitsForItsPresenceTopic(t *testing.T) {
	admin := stacktest.Admin(t)
	topics := kafkawire.PrefixedTopics(stacktest.Name(t, "fan"))
	var presence kafkawire.TopicSpec
	var others []kafkawire.TopicSpec
	for _, s := range kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions}) {
		if s.Name == topics.Presence {
			presence = s
		} else {
			others = append(others, s)
		}
	}
	if err := kafkawire.EnsureTopics(admin, others...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range append(others, presence) {
			admin.DeleteTopic(s.Name)
		}
	})
	logs := &stacktest.SyncBuffer{}
	f, err := fanout.New(fanout.Config{Kafka: stacktest.Kafka(t), Topics: topics, GroupID: topics.Sequenced + ".fanout",
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	stacktest.Eventually(t, time.Minute, "a failed attempt to follow the presence topic", func() bool {
		return strings.Contains(logs.String(), "following the presence topic failed")
	})
	select {
	case err := <-done:
		t.Fatalf("the fanout exited while its presence topic was missing: %v", err)
	default:
	}
	if f.Ready(ctx) == nil {
		t.Error("ready without its presence table")
	}
	if err := kafkawire.EnsureTopics(admin, presence); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, time.Minute, "fanout ready", func() bool { return f.Ready(ctx) == nil })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("fanout: %v", err)
	}
}
