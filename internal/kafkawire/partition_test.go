package kafkawire

import (
	"fmt"
	"github.com/rcrowley/go-metrics"
	"testing"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
)

// Known vectors from Kafka's own UtilsTest.testMurmur2
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
var javaMurmur2 = []struct {
	key  string
	want int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestMurmur2MatchesJava(t *testing.T) {
	for _, v := range javaMurmur2 {
		if got := Murmur2([]byte(v.key)); got != v.want {
			t.Errorf("Murmur2(%q) = %d, Java gives %d", v.key, got, v.want)
		}
	}
}

// TestLibrariesAgree routes 10,000 keys through the kafka-go Balancer and the
// sarama Partitioner of this package and through each library's own murmur2
// partitioner: all four must pick the same partition for every key.
func TestLibrariesAgree(t *testing.T) {
	for _, n := range []int{1, 3, 8, 64} {
		t.Run(fmt.Sprintf("%d partitions", n), func(t *testing.T) {
			ids := make([]int, n)
			for i := range ids {
				ids[i] = i
			}
			ours := NewPartitioner("t")
			saramaOwn := sarama.NewMurmur2Partitioner("t")
			kafkaGoOwn := &kafka.Murmur2Balancer{}
			for i := 0; i < 10000; i++ {
				key := conversationKey(i)
				want := PartitionFor([]byte(key), n)
				msg := &sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder(key)}
				got := map[string]int{
					"kafka-go Balancer":        Balancer{}.Balance(kafka.Message{Key: []byte(key)}, ids...),
					"kafka-go Murmur2Balancer": kafkaGoOwn.Balance(kafka.Message{Key: []byte(key)}, ids...),
				}
				p, err := ours.Partition(msg, int32(n))
				if err != nil {
					t.Fatal(err)
				}
				got["sarama Partitioner"] = int(p)
				p, err = saramaOwn.Partition(msg, int32(n))
				if err != nil {
					t.Fatal(err)
				}
				got["sarama Murmur2Partitioner"] = int(p)
				for who, g := range got {
					if g != want {
						t.Fatalf("key %q: %s picks %d, PartitionFor picks %d", key, who, g, want)
					}
				}
			}
		})
	}
}

func TestSaramaPartitionerRefusesNilKey(t *testing.T) {
	if _, err := (Partitioner{}).Partition(&sarama.ProducerMessage{Topic: "t"}, 4); err != ErrNoKey {
		t.Fatalf("nil key: error = %v, want ErrNoKey", err)
	}
}

func conversationKey(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("g:%d", i)
	}
	return fmt.Sprintf("dm:user%d:user%d", i, i*7+1)
}

// TestNoMetricsGivesSaramaTheKindsItAsksFor: sarama type-asserts what the
// registry returns; a wrong kind would panic inside the client.
func TestNoMetricsGivesSaramaTheKindsItAsksFor(t *testing.T) {
	r := noMetrics{}
	if _, ok := metrics.GetOrRegisterMeter("m", r).(metrics.Meter); !ok {
		t.Fatal("no meter")
	}
	if _, ok := metrics.GetOrRegisterCounter("c", r).(metrics.Counter); !ok {
		t.Fatal("no counter")
	}
	if _, ok := r.GetOrRegister("h", func() metrics.Histogram { return metrics.NilHistogram{} }).(metrics.Histogram); !ok {
		t.Fatal("no histogram")
	}
}
