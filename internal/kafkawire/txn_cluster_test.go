package kafkawire_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestTxnsGiveUpATransactionPastItsTimeout: while every broker of a
// private 3-node cluster is paused, a transaction cannot end; Run gives
// it up once it is older than its timeout (the coordinator aborts it by
// then) instead of waiting for the producer, which learns of it only
// after its requests time out and the brokers answer again. A new
// producer with the same transactional id then commits, and the given-up
// transaction's record is visible at most once.
func TestTxnsGiveUpATransactionPastItsTimeout(t *testing.T) {
	cluster := stacktest.StartCluster(t)
	admin, err := cluster.Kafka.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	topic := stacktest.Name(t, "txn")
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	cfg := kafkawire.TxnConfig{Kafka: cluster.Kafka, TransactionalID: stacktest.Name(t, "txns")}
	unit := func(value string) kafkawire.Unit {
		return kafkawire.Unit{Topic: topic, Partition: 0, Offset: -1,
			Messages: []*sarama.ProducerMessage{{Topic: topic, Partition: 0, Value: sarama.StringEncoder(value)}}}
	}
	start := func() (*kafkawire.Txns, <-chan error) {
		t.Helper()
		var txns *kafkawire.Txns
		stacktest.Eventually(t, time.Minute, "a transactional producer", func() bool {
			txns, err = kafkawire.NewTxns(cfg)
			return err == nil
		})
		ran := make(chan error, 1)
		go func() { ran <- txns.Run(context.Background(), nil) }()
		return txns, ran
	}

	txns, ran := start()
	if err := <-txns.Submit(unit("before")); err != nil {
		t.Fatal(err)
	}
	nodes := []string{"kafka-1", "kafka-2", "kafka-3"}
	for _, n := range nodes {
		cluster.Signal(n, "STOP")
	}
	paused := time.Now()
	givenUp := txns.Submit(unit("given-up"))
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "given up") {
			t.Fatalf("Run returned %v, want the transaction given up", err)
		}
		if took := time.Since(paused); took > 20*time.Second {
			t.Fatalf("Run gave the transaction up %v after the brokers paused, want about its 10 s timeout", took)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("Run still waits for a transaction 25 s after every broker paused")
	}
	if err := <-givenUp; err == nil {
		t.Fatal("the given-up transaction's unit reported committed")
	}
	for _, n := range nodes {
		cluster.Signal(n, "CONT")
	}
	if err := txns.Close(); err != nil {
		t.Fatal(err)
	}

	txns, _ = start()
	defer txns.Close()
	if err := <-txns.Submit(unit("after")); err != nil {
		t.Fatalf("a new producer after the brokers came back: %v", err)
	}
	seen := map[string]int{}
	consumer, err := sarama.NewConsumer(cluster.Kafka.BrokerList(), cluster.Kafka.ConsumerGroupConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for seen["after"] == 0 {
		select {
		case m := <-pc.Messages():
			seen[string(m.Value)]++
		case <-time.After(time.Minute):
			t.Fatalf("read committed: %v, and no \"after\" within a minute", seen)
		}
	}
	if seen["before"] != 1 || seen["after"] != 1 || seen["given-up"] > 1 {
		t.Fatalf("read committed %v, want before and after once each, given-up at most once", seen)
	}
}
