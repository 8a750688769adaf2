package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
)

// DefaultBrokers is where the stack script starts Kafka.
const DefaultBrokers = "127.0.0.1:9092"

// Config says how to reach Kafka.
type Config struct {
	// Brokers is the bootstrap list. Empty means DefaultBrokers.
	Brokers []string
	// ClientID names this process in broker logs and quotas. Empty means "seqchat".
	ClientID string
	// InstanceID, when set, makes this process a static consumer group
	// member (KIP-345): restarted with the same id it takes its partitions
	// back at once, without a rebalance or waiting out the dead process's
	// session. It must be unique among the running members of a group (a
	// pod name, say). A stopped member is only replaced after the session
	// timeout, as a static member does not leave its group.
	InstanceID string
	// FetchMaxWait and FetchMinBytes shape consumers' fetches: the broker
	// answers once FetchMinBytes are there or FetchMaxWait passed. Zero
	// means sarama's defaults (1 byte, 500ms): an answer per append, the
	// lowest latency; a larger minimum makes fewer, fuller fetches.
	FetchMaxWait  time.Duration
	FetchMinBytes int32
}

// ParseBrokers splits a comma-separated broker list.
func ParseBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func (c Config) withDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBrokers}
	}
	if c.ClientID == "" {
		c.ClientID = "seqchat"
	}
	return c
}

// BrokerList is the bootstrap list with the default filled in.
func (c Config) BrokerList() []string { return c.withDefaults().Brokers }

// Sarama is the base sarama configuration for this cluster.
func (c Config) Sarama() *sarama.Config {
	c = c.withDefaults()
	s := sarama.NewConfig()
	s.ClientID = c.ClientID
	s.Version = sarama.V4_0_0_0 // Kafka 4 dropped the protocol versions before 2.1
	s.MetricRegistry = noMetrics{}
	s.Net.DialTimeout = 10 * time.Second
	s.Metadata.Retry.Max = 10
	s.Metadata.Retry.Backoff = 250 * time.Millisecond
	// A partition consumer whose fetch failed (its broker restarted, its
	// leader moved) waits this long before it asks again: sarama's fixed
	// 2 s held every restore and catch-up after a broker restart for 2 s
	// past the broker's return. Reset by the next good fetch.
	s.Consumer.Retry.BackoffFunc = func(retries int) time.Duration {
		return min(50*time.Millisecond<<min(retries, 6), 2*time.Second)
	}
	if c.FetchMaxWait > 0 {
		s.Consumer.MaxWaitTime = c.FetchMaxWait
	}
	if c.FetchMinBytes > 0 {
		s.Consumer.Fetch.Min = c.FetchMinBytes
	}
	return s
}

// NewAdmin connects a sarama cluster admin.
func (c Config) NewAdmin() (sarama.ClusterAdmin, error) {
	admin, err := sarama.NewClusterAdmin(c.BrokerList(), c.Sarama())
	if err != nil {
		return nil, fmt.Errorf("connect kafka admin %v: %w", c.BrokerList(), err)
	}
	return admin, nil
}

// ConsumerGroupConfig reads only committed transactional data and leaves
// committing to the caller (after its output is safe, or inside a transaction).
func (c Config) ConsumerGroupConfig() *sarama.Config {
	s := c.Sarama()
	s.Consumer.IsolationLevel = sarama.ReadCommitted
	s.Consumer.Offsets.AutoCommit.Enable = false
	s.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offset fetches wait while a transaction that commits offsets is pending;
	// retry long enough not to fail the group over it.
	s.Consumer.Offsets.Retry.Max = 30
	s.Consumer.Return.Errors = true
	s.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	s.Consumer.Group.InstanceId = c.InstanceID
	// A join refused while the coordinator loads its offsets (right after
	// a broker restart) is retried soon, not after sarama's 2 s.
	s.Consumer.Group.Rebalance.Retry.Max = 20
	s.Consumer.Group.Rebalance.Retry.Backoff = 250 * time.Millisecond
	return s
}

// TransactionalProducerConfig is an idempotent, transactional producer that
// writes to explicitly chosen partitions (sarama.NewManualPartitioner): the
// sequencer's output goes to the partition number its input came from.
// transactionalID must be stable per running instance, so that a restart
// of the instance aborts what its previous incarnation left open.
func (c Config) TransactionalProducerConfig(transactionalID string) *sarama.Config {
	s := c.IdempotentProducerConfig()
	s.Producer.Transaction.ID = transactionalID
	// Short, so the open transaction of a dead instance is aborted quickly.
	s.Producer.Transaction.Timeout = 10 * time.Second
	// Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS
	// until the previous transaction's markers are written (a few ms):
	// retry soon rather than after sarama's fixed 100 ms (20 ms for the
	// first partition), and back off only if it lasts.
	s.Producer.Transaction.Retry.Max = 50
	s.Producer.Transaction.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(time.Millisecond<<min(retries, 7), 100*time.Millisecond)
	}
	s.Producer.Partitioner = sarama.NewManualPartitioner
	return s
}

// IdempotentProducerConfig is a sarama producer that never duplicates or
// reorders on retry and partitions by PartitionFor.
func (c Config) IdempotentProducerConfig() *sarama.Config {
	s := c.Sarama()
	s.Producer.Idempotent = true
	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Net.MaxOpenRequests = 1
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	s.Producer.Retry.Max = 10
	s.Producer.Partitioner = NewPartitioner
	// With no flush setting sarama sends the first record of a SendMessages
	// alone and the rest in a second request once it is answered (one
	// request in flight): a short linger puts a batch in one request.
	s.Producer.Flush.Frequency = 500 * time.Microsecond
	return s
}

// Producer is a kafka-go writer that routes by PartitionFor, waits for every
// in-sync replica, and refuses keyless records.
//
// kafka-go has no idempotent producer: a retry may duplicate a record and,
// after MaxAttempts, a later batch may land before a dropped one. The
// sequencer's dedup (I3) and hold window (I2) absorb both on the raw topic.
type Producer struct {
	w *kafka.Writer
}

// NewProducer writes to topic.
func (c Config) NewProducer(topic string) *Producer {
	c = c.withDefaults()
	return &Producer{w: &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
		Topic:                  topic,
		Balancer:               Balancer{},       // the default is round-robin
		RequiredAcks:           kafka.RequireAll, // the zero value is "none"
		BatchTimeout:           2 * time.Millisecond,
		MaxAttempts:            10,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		AllowAutoTopicCreation: false,
		Transport:              &kafka.Transport{ClientID: c.ClientID},
	}}
}

// Write sends msgs and returns once the broker acknowledged all of them.
// Transient failures (a leader moving, a topic just created, the broker
// restarting) are retried, only for the records that failed, until ctx ends.
func (p *Producer) Write(ctx context.Context, msgs ...kafka.Message) error {
	for i := range msgs {
		if len(msgs[i].Key) == 0 {
			return fmt.Errorf("write to %s: message %d: %w", p.w.Topic, i, ErrNoKey)
		}
	}
	backoff := 50 * time.Millisecond
	for {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		var failed kafka.WriteErrors
		if errors.As(err, &failed) && len(failed) == len(msgs) {
			var again []kafka.Message
			for i, e := range failed {
				if e != nil {
					if !retriable(e) {
						return fmt.Errorf("write to %s: %w", p.w.Topic, e)
					}
					again = append(again, msgs[i])
				}
			}
			msgs = again
		} else if !retriable(err) {
			return fmt.Errorf("write to %s: %w", p.w.Topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write to %s: %w (last error: %v)", p.w.Topic, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retriable: Kafka's transient errors and failed connections.
func retriable(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }

// ConsumePartition starts a partition consumer at offset, waiting out the
// moments after a topic's creation or a leader change when the partition
// has no leader (yet): up to 30 seconds, or until ctx ends.
func ConsumePartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, offset int64) (sarama.PartitionConsumer, error) {
	var pc sarama.PartitionConsumer
	err := whileLeaderless(ctx, func() (err error) {
		pc, err = consumer.ConsumePartition(topic, p, offset)
		return err
	})
	return pc, err
}

// ConsumePartitions starts consumers of topic's parts at offset together.
// One after another, each waited for its own offset lookup and, past the
// consumer's 100 ms batch of new subscriptions, for a fetch in flight to
// return (up to its max wait): eight once took 0.75 s of a gateway's
// 0.8 s start on an idle broker. On an error the ones started are closed.
func ConsumePartitions(ctx context.Context, consumer sarama.Consumer, topic string, parts []int32, offset int64) ([]sarama.PartitionConsumer, error) {
	pcs := make([]sarama.PartitionConsumer, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pcs[i], errs[i] = ConsumePartition(ctx, consumer, topic, p, offset)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ClosePartitions(slices.DeleteFunc(pcs, func(pc sarama.PartitionConsumer) bool { return pc == nil }))
		return nil, fmt.Errorf("consume %s: %w", topic, err)
	}
	return pcs, nil
}

// ClosePartitions closes partition consumers together. Each Close waits
// until its broker connection abandons the fetch in flight; one after
// another, eight of them took about 2 s of a service's shutdown.
func ClosePartitions(pcs []sarama.PartitionConsumer) {
	for _, pc := range pcs {
		pc.AsyncClose()
	}
	for _, pc := range pcs {
		pc.Close() // its errors are the consumer's last, of no use now
	}
}

// NewestOffset is the offset the partition's next record will get, waiting
// out a partition without a leader like ConsumePartition.
func NewestOffset(ctx context.Context, client sarama.Client, topic string, p int32) (int64, error) {
	var end int64
	err := whileLeaderless(ctx, func() (err error) {
		end, err = client.GetOffset(topic, p, sarama.OffsetNewest)
		return err
	})
	return end, err
}

// StableOffset is the partition's last stable offset: where a
// read_committed consumer's reading ends now (before the first record of
// a transaction still open). Waits out a leaderless partition.
func StableOffset(ctx context.Context, client sarama.Client, topic string, p int32) (int64, error) {
	var end int64
	err := whileLeaderless(ctx, func() error {
		broker, err := client.Leader(topic, p)
		if err != nil {
			return err
		}
		req := sarama.NewOffsetRequest(client.Config().Version)
		req.IsolationLevel = sarama.ReadCommitted
		req.AddBlock(topic, p, sarama.OffsetNewest, 1)
		resp, err := broker.GetAvailableOffsets(req)
		if err != nil {
			return err
		}
		block := resp.GetBlock(topic, p)
		switch {
		case block == nil:
			return sarama.ErrIncompleteResponse
		case !errors.Is(block.Err, sarama.ErrNoError):
			return block.Err
		case len(block.Offsets) != 1:
			return fmt.Errorf("stable offset of %s/%d: %d offsets in the answer", topic, p, len(block.Offsets))
		}
		end = block.Offsets[0]
		return nil
	})
	return end, err
}

// whileLeaderless runs op until it succeeds or fails for another reason
// than a partition without a leader, for up to 30 seconds or until ctx ends.
func whileLeaderless(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := op()
		if err == nil || time.Now().After(deadline) || !(errors.Is(err, sarama.ErrNotLeaderForPartition) ||
			errors.Is(err, sarama.ErrLeaderNotAvailable) || errors.Is(err, sarama.ErrUnknownTopicOrPartition)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
