package history_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestProgressTellsUnknownFromNotStoredYet drives a real topic written in
// transactions, as the sequencer writes it, and commits the group's
// offsets as the sink does: a conversation's partition counts as stored
// only once the group has committed every record committed before the
// call, its transaction markers and aborted transactions aside, and an
// open transaction does not hold it back. Stored gives the offset before which everything is stored.
func TestProgressTellsUnknownFromNotStoredYet(t *testing.T) {
	cfg := stacktest.Kafka(t)
	topic := stacktest.Topic(t, 1, nil)
	group := stacktest.Name(t, "sink")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	progress := history.NewProgress(cfg, kafkawire.Topics{Sequenced: topic}, group, nil)
	defer progress.Close()
	want := func(step string, caught bool, stored int64) {
		t.Helper()
		got, err := progress.CaughtUp(ctx, "g:anything")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got != caught {
			t.Fatalf("%s: caught up = %v, want %v", step, got, caught)
		}
		// Stored answers are reused for a moment: wait for a fresh one.
		var last []history.TopicStored
		stacktest.Eventually(t, 5*time.Second, step+": stored before", func() bool {
			last, err = progress.Stored(ctx)
			return err == nil && len(last) == 1 && last[0].Topic == topic && slices.Equal(last[0].StoredBefore, []int64{stored})
		})
	}

	prod, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	send := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("g:x"), Value: sarama.StringEncoder("entry")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	client, err := sarama.NewClient(cfg.BrokerList(), cfg.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	defer offsets.Close()
	pom, err := offsets.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pom.Close()
	// A commit's markers are written by the coordinator a moment after
	// CommitTxn returns; until then read_committed readers do not see the
	// transaction either.
	committed := func(stable int64) {
		t.Helper()
		stacktest.Eventually(t, 30*time.Second, "the transaction's marker", func() bool {
			end, err := kafkawire.StableOffset(ctx, client, topic, 0)
			return err == nil && end == stable
		})
	}
	commit := func(next int64) {
		t.Helper()
		pom.MarkOffset(next, "")
		offsets.Commit()
	}

	want("empty topic, nothing committed", true, 0)
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(3) // offsets 0..2, the commit marker at 3
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	committed(4)
	want("three entries, none stored", false, -1)
	commit(2)
	want("two of three stored", false, 2)
	commit(3)
	want("all three stored (the marker is never received)", true, 4)

	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(1) // offset 4, in an open transaction
	want("an open transaction is not written yet", true, 4)
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	committed(6)
	want("its commit makes it due", false, 3)
	commit(5)
	want("stored", true, 6)

	// A partition that ends in an aborted transaction (a sequencer killed
	// mid-transaction): its records and marker are never received, so
	// the sink never commits past them, and it has stored everything.
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(2) // offsets 6 and 7, the abort marker at 8
	if err := prod.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	committed(9)
	want("an aborted transaction at the end is nothing to store", true, 9)
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(1) // offset 9, its marker at 10
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	committed(11)
	want("an entry after the aborted transaction is due", false, 5)
	commit(10)
	want("stored past the aborted transaction", true, 11)
}

// TestProgressCoversEveryLiveGeneration: a group created after a
// repartition is on the new generation's sequenced topic only. While
// that generation's sink lags on the group's partition, history must not
// call the group unknown: CaughtUp looks at every live generation, each
// on the group's partition of that generation (2 partitions, then 4), and
// Stored answers per topic. Until the live generations are known it
// answers nothing.
func TestProgressCoversEveryLiveGeneration(t *testing.T) {
	cfg := stacktest.Kafka(t)
	base := kafkawire.Topics{Sequenced: stacktest.Topic(t, 2, nil)}
	seq2 := generation.Topics(base, 2).Sequenced
	stacktest.CreateTopics(t, kafkawire.TopicSpec{Name: seq2, Partitions: 4, ReplicationFactor: 1})
	group := stacktest.Name(t, "sink")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var live []*imv1.Generation
	setLive := func(gens ...*imv1.Generation) {
		mu.Lock()
		defer mu.Unlock()
		live = gens
	}
	progress := history.NewProgress(cfg, base, group, func() []*imv1.Generation {
		mu.Lock()
		defer mu.Unlock()
		return live
	})
	defer progress.Close()
	if _, err := progress.CaughtUp(ctx, "g:new"); !errors.Is(err, history.ErrNoGenerations) {
		t.Fatalf("CaughtUp before the generations are known: %v", err)
	}
	gen1, gen2 := &imv1.Generation{Id: 1, Partitions: 2}, &imv1.Generation{Id: 2, Partitions: 4}
	setLive(gen1, gen2)

	// g:new's creation, sequenced by generation 2 on its partition of 4.
	conv := "g:new"
	part := int32(kafkawire.PartitionFor([]byte(conv), 4))
	prod, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: seq2, Partition: part, Key: sarama.StringEncoder(conv), Value: sarama.StringEncoder("created")}); err != nil {
		t.Fatal(err)
	}
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(cfg.BrokerList(), cfg.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	stacktest.Eventually(t, 30*time.Second, "the transaction's marker", func() bool {
		end, err := kafkawire.StableOffset(ctx, client, seq2, part)
		return err == nil && end == 2
	})

	caughtUp := func(step string, want bool) {
		t.Helper()
		got, err := progress.CaughtUp(ctx, conv)
		if err != nil || got != want {
			t.Fatalf("%s: CaughtUp = %v, %v; want %v", step, got, err, want)
		}
	}
	caughtUp("generation 2's sink has not stored the creation", false)
	setLive(gen1)
	caughtUp("generation 1 alone (the old rule) knows nothing of it", true)
	setLive(gen1, gen2)

	stored := func(step string, want map[string][]int64) {
		t.Helper()
		var last []history.TopicStored
		stacktest.Eventually(t, 5*time.Second, step+": stored before", func() bool {
			if last, err = progress.Stored(ctx); err != nil || len(last) != len(want) {
				return false
			}
			for _, ts := range last {
				if !slices.Equal(ts.StoredBefore, want[ts.Topic]) {
					return false
				}
			}
			return true
		})
		if last[0].Generation != 1 || last[1].Generation != 2 {
			t.Fatalf("%s: generations %d, %d", step, last[0].Generation, last[1].Generation)
		}
	}
	behind := []int64{0, 0, 0, 0}
	behind[part] = -1
	stored("generation 2 behind", map[string][]int64{base.Sequenced: {0, 0}, seq2: behind})

	// The sink of generation 2 (group .g2) stores the creation.
	offsets, err := sarama.NewOffsetManagerFromClient(generation.GroupID(group, 2), client)
	if err != nil {
		t.Fatal(err)
	}
	defer offsets.Close()
	pom, err := offsets.ManagePartition(seq2, part)
	if err != nil {
		t.Fatal(err)
	}
	defer pom.Close()
	pom.MarkOffset(1, "")
	offsets.Commit()
	caughtUp("generation 2's sink stored it", true)
	after := []int64{0, 0, 0, 0}
	after[part] = 2 // the stable end: the creation and its marker
	stored("generation 2 stored", map[string][]int64{base.Sequenced: {0, 0}, seq2: after})
}
