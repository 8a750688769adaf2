package sequencer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
)

// BenchmarkRepartition measures the sequencers' switch from 4 to 8
// partitions with 10,000 conversations (5 messages each before it):
// the fences are written, and right after them every conversation's next
// message goes to the new generation's raw topic, as writers that switched
// at once. Each conversation's pause is that message's time from its
// write to its sequenced entry (it waits for its partition's import);
// switch_s is the time from the fences to the last of them.
// Run: go test -run '^$' -bench BenchmarkRepartition -benchtime 1x ./pipeline/sequencer
func BenchmarkRepartition(b *testing.B) {
	const convs, before = 10000, 5
	for range b.N {
		base := newTopics(b, 4)
		g2 := generation.Topics(base, 2)
		stacktest.CreateTopics(b, generation.Specs(base, kafkawire.Layout{}, 2, 8)...)
		startSequencer(b, base, nil)
		startSequencer(b, base, func(c *sequencer.Config) { c.Generation = 2 })

		var mu sync.Mutex
		sequencedBefore := 0
		seenAt := map[string]time.Time{}
		allBefore, allAfter := make(chan struct{}), make(chan struct{})
		stacktest.Follow(b, base.Sequenced, 4, func(m *sarama.ConsumerMessage) {
			mu.Lock()
			defer mu.Unlock()
			if sequencedBefore++; sequencedBefore == convs*before {
				close(allBefore)
			}
		})
		stacktest.Follow(b, g2.Sequenced, 8, func(m *sarama.ConsumerMessage) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			seenAt[string(m.Key)] = now
			if len(seenAt) == convs {
				close(allAfter)
			}
		})
		msg := func(i int, cs uint64) kafkaMessage {
			conv := fmt.Sprintf("dm:a%05d:b%05d", i, i)
			return encodeRaw(b, &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: fmt.Sprintf("m%d", cs),
				SenderUserId: fmt.Sprintf("a%05d", i), SenderDeviceId: "d", ClientSeq: cs, ReceivedAtMs: time.Now().UnixMilli(), Origin: "bench",
				Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("hello")}}})
		}
		var msgs []kafkaMessage
		for cs := uint64(1); cs <= before; cs++ {
			for i := range convs {
				msgs = append(msgs, msg(i, cs))
			}
		}
		if err := rawProducer(b, base.Raw).Write(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
		select {
		case <-allBefore:
		case <-time.After(5 * time.Minute):
			b.Fatal("the messages before the switch were not all sequenced")
		}

		b.ResetTimer()
		start := time.Now()
		if _, err := repartition.WriteFences(stacktest.Kafka(b), base.Raw, []int32{0, 1, 2, 3}, &imv1.Generation{Id: 2, Partitions: 8}); err != nil {
			b.Fatal(err)
		}
		after := rawProducer(b, g2.Raw)
		written := make([]time.Time, convs)
		const chunk = 500
		for from := 0; from < convs; from += chunk {
			var batch []kafkaMessage
			for i := from; i < min(from+chunk, convs); i++ {
				batch = append(batch, msg(i, before+1))
			}
			at := time.Now()
			if err := after.Write(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			for i := from; i < min(from+chunk, convs); i++ {
				written[i] = at
			}
		}
		select {
		case <-allAfter:
		case <-time.After(5 * time.Minute):
			b.Fatal("the messages after the switch were not all sequenced")
		}
		b.StopTimer()
		mu.Lock()
		pauses := make([]float64, 0, convs)
		last := start
		for i := range convs {
			at := seenAt[fmt.Sprintf("dm:a%05d:b%05d", i, i)]
			pauses = append(pauses, at.Sub(written[i]).Seconds()*1000)
			if at.After(last) {
				last = at
			}
		}
		mu.Unlock()
		slices.Sort(pauses)
		q := func(f float64) float64 { return pauses[min(len(pauses)-1, int(f*float64(len(pauses))))] }
		b.ReportMetric(last.Sub(start).Seconds(), "switch_s")
		b.ReportMetric(q(0.5), "pause_p50_ms")
		b.ReportMetric(q(0.99), "pause_p99_ms")
		b.ReportMetric(pauses[len(pauses)-1], "pause_max_ms")
		b.Logf("%d conversations (%d messages each before): switch %v, pause p50 %.0f ms, p99 %.0f ms, max %.0f ms",
			convs, before, last.Sub(start).Round(time.Millisecond), q(0.5), q(0.99), pauses[len(pauses)-1])
	}
}
