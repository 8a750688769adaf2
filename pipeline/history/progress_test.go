package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/history"
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
	progress := history.NewProgress(cfg, kafkawire.Topics{Sequenced: topic}, group)
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
		var last []int64
		stacktest.Eventually(t, 5*time.Second, step+": stored before", func() bool {
			last, err = progress.Stored(ctx)
			return err == nil && len(last) == 1 && last[0] == stored
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
