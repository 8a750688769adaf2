package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/backoff"
)

// ErrPartitionMismatch means topics that must be co-partitioned are not, or
// an existing topic has another partition count than configured. The
// sequencer writes each output to the partition number it read from, so a
// mismatch would send conversations to the wrong consumers.
var ErrPartitionMismatch = errors.New("partition count mismatch")

// Topics names the pipeline's topics. Zero fields get the defaults below.
type Topics struct {
	Raw            string // zero means "im.raw"
	Sequenced      string // zero means "im.seq"
	SequencerState string // zero means "im.seq.state" (compacted changelog)
	FanoutMembers  string // zero means "im.fanout.members" (compacted membership periods)
	Presence       string // zero means "im.presence" (compacted)
	DeadLetter     string // zero means "im.deadletter"
	Heads          string // zero means "im.heads" (the sequencer's heartbeats)
	GatewayPrefix  string // zero means "im.gw."; a gateway's topic is prefix + gateway id
}

// WithDefaults returns t with empty names filled in.
func (t Topics) WithDefaults() Topics {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&t.Raw, "im.raw")
	def(&t.Sequenced, "im.seq")
	def(&t.SequencerState, "im.seq.state")
	def(&t.FanoutMembers, "im.fanout.members")
	def(&t.Presence, "im.presence")
	def(&t.DeadLetter, "im.deadletter")
	def(&t.Heads, "im.heads")
	def(&t.GatewayPrefix, "im.gw.")
	return t
}

// PrefixedTopics names every topic prefix + "." + role (raw, seq, state,
// fanout, presence, dlq, heads, gw.): a separate set for a test or a benchmark.
func PrefixedTopics(prefix string) Topics {
	return Topics{Raw: prefix + ".raw", Sequenced: prefix + ".seq", SequencerState: prefix + ".state",
		FanoutMembers: prefix + ".fanout", Presence: prefix + ".presence", DeadLetter: prefix + ".dlq",
		Heads: prefix + ".heads", GatewayPrefix: prefix + ".gw."}
}

// Gateway is the topic of one gateway.
func (t Topics) Gateway(gatewayID string) string { return t.WithDefaults().GatewayPrefix + gatewayID }

// Layout says how topics are created. Zero fields get the defaults below.
type Layout struct {
	Partitions          int32         // zero means 8; raw, sequenced and the state topics share it
	ReplicationFactor   int16         // zero means 1 (one broker); use 3 in production
	RawRetention        time.Duration // zero means 7 days
	SequencedRetention  time.Duration // zero means 7 days; ClickHouse keeps history for good
	DeadLetterRetention time.Duration // zero means 30 days
	GatewayRetention    time.Duration // zero means 1 day: offline devices catch up from history
}

// WithDefaults returns l with zero fields filled in.
func (l Layout) WithDefaults() Layout {
	if l.Partitions == 0 {
		l.Partitions = 8
	}
	if l.ReplicationFactor == 0 {
		l.ReplicationFactor = 1
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.RawRetention, 7*24*time.Hour)
	def(&l.SequencedRetention, 7*24*time.Hour)
	def(&l.DeadLetterRetention, 30*24*time.Hour)
	def(&l.GatewayRetention, 24*time.Hour)
	return l
}

// TopicSpec is one topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Config            map[string]string
}

func (l Layout) spec(name string, partitions int32, cfg map[string]string) TopicSpec {
	minISR := int16(1)
	if l.ReplicationFactor > 2 {
		minISR = 2 // acks=all then survives one broker loss
	}
	cfg["min.insync.replicas"] = strconv.Itoa(int(minISR))
	return TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: l.ReplicationFactor, Config: cfg}
}

func retention(d time.Duration) map[string]string {
	return map[string]string{"cleanup.policy": "delete", "retention.ms": strconv.FormatInt(d.Milliseconds(), 10)}
}

// CoreSpecs are the topics every deployment needs (not the per-gateway ones).
func CoreSpecs(t Topics, l Layout) []TopicSpec {
	t, l = t.WithDefaults(), l.WithDefaults()
	// Compacted topics are read whole when a partition is claimed (state
	// restore), so they must actually compact: the cleaner never touches
	// the active segment, and with the broker's defaults (1 GiB or 7 days)
	// that segment holds every change ever made. Rolling every 10 minutes
	// or 32 MiB and cleaning at 10% dirty keeps a restore near the size of
	// the live state (measured: 37 MiB per state partition read on every
	// sequencer restart after a few hours of load, 5-7 s; docs/benchmarks.md).
	compacted := func() map[string]string {
		return map[string]string{"cleanup.policy": "compact", "segment.ms": "600000", "segment.bytes": "33554432",
			"min.cleanable.dirty.ratio": "0.1"}
	}
	return []TopicSpec{
		l.spec(t.Raw, l.Partitions, retention(l.RawRetention)),
		l.spec(t.Sequenced, l.Partitions, retention(l.SequencedRetention)),
		l.spec(t.SequencerState, l.Partitions, compacted()),
		l.spec(t.FanoutMembers, l.Partitions, compacted()),
		l.spec(t.Presence, l.Partitions, compacted()),
		l.spec(t.DeadLetter, l.Partitions, retention(l.DeadLetterRetention)),
		HeadsSpec(t, l),
	}
}

// HeadsSpec is the sequencer's heartbeat topic. Readers start at its end,
// so an hour of it is plenty.
func HeadsSpec(t Topics, l Layout) TopicSpec {
	t, l = t.WithDefaults(), l.WithDefaults()
	return l.spec(t.Heads, l.Partitions, retention(time.Hour))
}

// GatewaySpec is the topic of one gateway.
func GatewaySpec(t Topics, l Layout, gatewayID string) TopicSpec {
	l = l.WithDefaults()
	return l.spec(t.Gateway(gatewayID), l.Partitions, retention(l.GatewayRetention))
}

// EnsureTopics creates the topics that do not exist yet. A topic that exists
// with another partition count is an error (ErrPartitionMismatch); its other
// settings are left as they are.
func EnsureTopics(admin sarama.ClusterAdmin, specs ...TopicSpec) error {
	for _, s := range specs {
		cfg := make(map[string]*string, len(s.Config))
		for k, v := range s.Config {
			cfg[k] = &v
		}
		err := admin.CreateTopic(s.Name, &sarama.TopicDetail{
			NumPartitions:     s.Partitions,
			ReplicationFactor: s.ReplicationFactor,
			ConfigEntries:     cfg,
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", s.Name, err)
		}
		if err == nil {
			continue
		}
		n, err := PartitionCount(admin, s.Name)
		if err != nil {
			return err
		}
		if n != s.Partitions {
			return fmt.Errorf("topic %s exists with %d partitions, configured %d: %w", s.Name, n, s.Partitions, ErrPartitionMismatch)
		}
		// An existing topic gets this version's settings (only the keys
		// of the spec; others set by an operator stay).
		set := make(map[string]sarama.IncrementalAlterConfigsEntry, len(s.Config))
		for k, v := range s.Config {
			set[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
		}
		if err := admin.IncrementalAlterConfig(sarama.TopicResource, s.Name, set, false); err != nil {
			return fmt.Errorf("update the settings of topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// CheckCoPartitioned fails unless every topic exists with the same number of
// partitions. The sequencer calls it at start for raw, sequenced and state.
func CheckCoPartitioned(admin sarama.ClusterAdmin, topics ...string) (int32, error) {
	var want int32
	for i, name := range topics {
		n, err := PartitionCount(admin, name)
		if err != nil {
			return 0, err
		}
		if i == 0 {
			want = n
		} else if n != want {
			return 0, fmt.Errorf("topic %s has %d partitions, %s has %d: %w", topics[0], want, name, n, ErrPartitionMismatch)
		}
	}
	return want, nil
}

// PartitionCount is the number of partitions of topic. A topic created a
// moment ago may not be in the broker's metadata yet: it asks again for up
// to 10 seconds before saying the topic does not exist.
func PartitionCount(admin sarama.ClusterAdmin, topic string) (int32, error) {
	deadline := time.Now().Add(10 * time.Second)
	backoff := 100 * time.Millisecond
	for {
		md, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			return 0, fmt.Errorf("describe topic %s: %w", topic, err)
		}
		if len(md) != 1 {
			return 0, fmt.Errorf("describe topic %s: %d answers", topic, len(md))
		}
		switch md[0].Err {
		case sarama.ErrNoError:
			return int32(len(md[0].Partitions)), nil
		case sarama.ErrUnknownTopicOrPartition, sarama.ErrLeaderNotAvailable:
			if time.Now().Before(deadline) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
		}
		return 0, fmt.Errorf("describe topic %s: %w", topic, md[0].Err)
	}
}

// PartitionCountIfExists is PartitionCount without the wait: 0 and false
// when the broker does not know topic. For a topic that may be gone (an
// earlier generation's, after imctl repartition cleanup), not for one
// just created.
func PartitionCountIfExists(admin sarama.ClusterAdmin, topic string) (int32, bool, error) {
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, false, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if len(md) != 1 {
		return 0, false, fmt.Errorf("describe topic %s: %d answers", topic, len(md))
	}
	switch md[0].Err {
	case sarama.ErrNoError:
		return int32(len(md[0].Partitions)), true, nil
	case sarama.ErrUnknownTopicOrPartition:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("describe topic %s: %w", topic, md[0].Err)
}

// BusiestLeader is the broker leading the most partitions of topics (the
// lowest id of a tie), with how many it leads of how many in all: where a
// broker fault hurts most.
func BusiestLeader(admin sarama.ClusterAdmin, topics ...string) (id int32, leads, total int, err error) {
	metas, err := admin.DescribeTopics(topics)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("partition leaders: %w", err)
	}
	count := map[int32]int{}
	for _, m := range metas {
		if m.Err != sarama.ErrNoError {
			return 0, 0, 0, fmt.Errorf("partition leaders of %s: %w", m.Name, m.Err)
		}
		for _, p := range m.Partitions {
			count[p.Leader]++
			total++
		}
	}
	id = -1
	for b, n := range count {
		if id < 0 || n > count[id] || n == count[id] && b < id {
			id = b
		}
	}
	if id < 0 {
		return 0, 0, 0, fmt.Errorf("partition leaders of %v: no partition", topics)
	}
	return id, count[id], total, nil
}

// TopicsWait is a service's start-up wait for its topics; the zero value
// is ready to use. Safe for concurrent use.
type TopicsWait struct {
	err atomic.Pointer[error]
}

// Err is why the start waits, nil when it does not (for /readyz).
func (w *TopicsWait) Err() error {
	if err := w.err.Load(); err != nil {
		return fmt.Errorf("waiting for the topics: %w", *err)
	}
	return nil
}

// Await runs check (the service's look at its topics, through an admin
// client of k) until it succeeds. While the broker does not answer or a
// topic does not exist yet (a broker restarting, `imctl init` still
// creating them) it keeps the error for Err, logs it and retries with
// backoff: a service must not exit on a transient broker condition. A
// partition mismatch, a configuration error, is returned at once; so is
// nil when ctx ends.
func (w *TopicsWait) Await(ctx context.Context, log *slog.Logger, k Config, check func(sarama.ClusterAdmin) error) error {
	retry := backoff.New(200*time.Millisecond, 5*time.Second)
	for {
		admin, err := k.NewAdmin()
		if err == nil {
			err = check(admin)
			admin.Close()
		}
		if err == nil || errors.Is(err, ErrPartitionMismatch) {
			w.err.Store(nil)
			return err
		}
		w.err.Store(&err)
		log.Warn("waiting for the topics", "err", err, "backoff", retry.Next())
		if !retry.Wait(ctx) {
			return nil
		}
	}
}

// GroupAssignment is how many partitions of topic each member of group
// owns, by static instance id (member id for dynamic members), and the
// group's state ("Stable" once a rebalance has ended).
func GroupAssignment(admin sarama.ClusterAdmin, group, topic string) (map[string]int, string, error) {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return nil, "", err
	}
	if len(ds) != 1 {
		return nil, "", fmt.Errorf("describe group %s: %d answers", group, len(ds))
	}
	out := map[string]int{}
	for id, m := range ds[0].Members {
		if m.GroupInstanceId != nil {
			id = *m.GroupInstanceId
		}
		if a, err := m.GetMemberAssignment(); err == nil && a != nil {
			out[id] = len(a.Topics[topic])
		}
	}
	return out, ds[0].State, nil
}
