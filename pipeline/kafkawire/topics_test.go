package kafkawire_test

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/pipeline/stacktest"
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
	policy := ""
	for _, e := range entries {
		if e.Name == "cleanup.policy" {
			policy = e.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("state topic cleanup.policy = %q, want compact", policy)
	}
}
