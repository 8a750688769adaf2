package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/chaos"
)

// TestSequencedLogAcrossGenerations: a conversation's log is the old
// generation's entries up to its partition's end record, then the new
// one's; one that ends in the old generation is not waited for in the new;
// a seq missing at the switch is a violation.
func TestSequencedLogAcrossGenerations(t *testing.T) {
	k := stacktest.Kafka(t)
	const c1, c2 = "dm:u:v", "dm:u:w" // u sends in both
	cfg := k.Sarama()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(k.BrokerList(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	produce := func(topic string, part int32, key string, value []byte) {
		t.Helper()
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part,
			Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}); err != nil {
			t.Fatal(err)
		}
	}
	write := func(topic string, partitions int, records ...*imv1.SequencedRecord) {
		t.Helper()
		for _, r := range records {
			v, err := imv1.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			produce(topic, int32(kafkawire.PartitionFor([]byte(r.ConversationId), partitions)), r.ConversationId, v)
		}
	}
	end := func(topic string, partitions int32) { // what a fenced sequencer commits last
		for part := range partitions {
			produce(topic, part, generation.FenceKey, nil)
		}
	}
	entry := func(conv string, seq uint64) *imv1.SequencedRecord {
		return &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, Seq: seq, Epoch: 1, MsgId: sequencer.MsgID(conv, 1, seq),
			SenderUserId: "u", ClientMsgId: fmt.Sprintf("%s-m%d", conv, seq)}
	}
	check := func(gen2First uint64) (chaos.LogCheck, error) {
		old, next := stacktest.Topic(t, 2, nil), stacktest.Topic(t, 4, nil)
		write(old, 2, entry(c1, 1), entry(c2, 1), entry(c1, 2))
		end(old, 2)
		write(next, 4, entry(c1, gen2First), entry(c1, gen2First+1))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return chaos.CheckSequencedLog(ctx, k, []chaos.LogGeneration{{Topic: old}, {Topic: next}},
			map[string]uint64{c1: gen2First + 1, c2: 1})
	}

	got, err := check(3)
	if err != nil {
		t.Fatal(err)
	}
	if got.Entries != 5 || len(got.Violations) != 0 {
		t.Errorf("contiguous across the switch: %d entries, violations %v; want 5 and none", got.Entries, got.Violations)
	}

	got, err = check(4) // seq 3 lost at the switch
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Violations) != 1 || !strings.Contains(got.Violations[0], "seq 4 follows 2") {
		t.Errorf("a seq missing at the switch: violations %v, want seq 4 follows 2", got.Violations)
	}
}
