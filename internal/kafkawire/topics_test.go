package kafkawire_test

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

func TestEnsureTopicsIsIdempotentAndChecksPartitions(t *testing.T) {
	admin := stacktest.Admin(t)
	prefix := stacktest.Name(t, "core")
	topics := kafkawire.PrefixedTopics(prefix)
	specs := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: 3})
	t.Cleanup(func() {
		for _, s := range specs {
			admin.DeleteTopic(s.Name)
		}
	})
	for i := 0; i < 2; i++ { // the second round finds everything in place
		if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	// A topic made by an older version (other settings) is brought up to
	// date by the next EnsureTopics.
	old := "86400000"
	if err := admin.AlterConfig(sarama.TopicResource, topics.SequencerState,
		map[string]*string{"cleanup.policy": &compact, "segment.ms": &old}, false); err != nil {
		t.Fatal(err)
	}
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		t.Fatal(err)
	}
	n, err := kafkawire.CheckCoPartitioned(admin, topics.Raw, topics.Sequenced, topics.SequencerState)
	if err != nil || n != 3 {
		t.Fatalf("CheckCoPartitioned = %d, %v; want 3, nil", n, err)
	}

	resized := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: 4})
	if err := kafkawire.EnsureTopics(admin, resized...); !errors.Is(err, kafkawire.ErrPartitionMismatch) {
		t.Fatalf("EnsureTopics with 4 partitions over 3: error = %v, want ErrPartitionMismatch", err)
	}

	other := stacktest.Topic(t, 2, nil)
	if _, err := kafkawire.CheckCoPartitioned(admin, topics.Raw, other); !errors.Is(err, kafkawire.ErrPartitionMismatch) {
		t.Fatalf("CheckCoPartitioned(3, 2 partitions): error = %v, want ErrPartitionMismatch", err)
	}

	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topics.SequencerState})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.Name] = e.Value
	}
	if got["cleanup.policy"] != "compact" || got["segment.ms"] != "600000" || got["min.cleanable.dirty.ratio"] != "0.1" {
		t.Fatalf("state topic cleanup.policy %q, segment.ms %q, min.cleanable.dirty.ratio %q; want compact, 600000, 0.1",
			got["cleanup.policy"], got["segment.ms"], got["min.cleanable.dirty.ratio"])
	}
}

var compact = "compact"
