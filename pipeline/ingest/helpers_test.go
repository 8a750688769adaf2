package ingest_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// newIngester builds an Ingester on the test broker, closed at cleanup.
func newIngester(t testing.TB, cfg ingest.Config) *ingest.Ingester {
	t.Helper()
	cfg.Kafka = stacktest.Kafka(t)
	ing, err := ingest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ing.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ing
}

// rawRecord is one record read back from the raw topic.
type rawRecord struct {
	key       string
	partition int32
	offset    int64
	rec       *imv1.RawRecord
}

// readRaw reads n records of topic (stacktest.ReadCommitted) and decodes
// them, failing the test if they do not all arrive within a minute.
func readRaw(t testing.TB, topic string, n int) []rawRecord {
	t.Helper()
	var got []rawRecord
	for _, m := range stacktest.ReadCommitted(t, topic, n, 60*time.Second) {
		rec := &imv1.RawRecord{}
		if err := imv1.Unmarshal(m.Value, rec); err != nil {
			t.Fatalf("record at %d/%d does not decode: %v", m.Partition, m.Offset, err)
		}
		got = append(got, rawRecord{key: string(m.Key), partition: m.Partition, offset: m.Offset, rec: rec})
	}
	return got
}

// recordsIn is how many records topic holds over all partitions. With
// acknowledged writes and no transactions it is exact, so a test can prove
// that nothing beyond what it read was written.
func recordsIn(t testing.TB, topic string) int64 {
	t.Helper()
	cfg := stacktest.Kafka(t)
	client, err := sarama.NewClient(cfg.BrokerList(), cfg.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range parts {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		total += newest - oldest
	}
	return total
}

// checkPlacement checks that a record is keyed by its conversation and sits
// on the partition every producer of the project agrees on.
func checkPlacement(t testing.TB, r rawRecord, partitions int) {
	t.Helper()
	if r.key != r.rec.GetConversationId() {
		t.Errorf("%s: key %q, want the conversation id %q", r.rec.GetClientMsgId(), r.key, r.rec.GetConversationId())
	}
	if want := kafkawire.PartitionFor([]byte(r.key), partitions); int(r.partition) != want {
		t.Errorf("%s: partition %d, PartitionFor says %d", r.rec.GetClientMsgId(), r.partition, want)
	}
}
