package floor

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// Config is one floor run.
type Config struct {
	Kafka kafkawire.Config
	// Partitions of every topic. Zero means 8.
	Partitions int32
	// Keys are the conversation keys records are spread over. Zero means 1000.
	Keys int
	// PayloadBytes is each record's payload after its 16-byte header. Zero means 100.
	PayloadBytes int
	// Rate is records per second. Zero means 500.
	Rate float64
	// Duration of the load; Drain, how long to wait for the last records
	// afterwards. Zero means 20s and 30s.
	Duration, Drain time.Duration
	// TransactionLinger of the exactly-once relay. Zero means the
	// sequencer's default; negative means none.
	TransactionLinger time.Duration
	// Logger; nil means discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.PayloadBytes == 0 {
		c.PayloadBytes = 100
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.TransactionLinger == 0 {
		c.TransactionLinger = sequencer.DefaultTransactionLinger
	}
	c.TransactionLinger = max(c.TransactionLinger, 0)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// header: the record's intended send time and its number, both big-endian
// int64; the sequencing relay appends the time it relayed it.
const headerBytes = 16

// Run creates a fresh set of topics, runs the relays, fires the load and
// returns what arrived, as a load generator result (deliveries are records
// at the gateway consumer; legs split at the sequencing relay). The topics
// are deleted at the end.
func Run(ctx context.Context, cfg Config) (*loadgen.Result, error) {
	cfg.setDefaults()
	started := time.Now()
	run := fmt.Sprintf("floor.%d", started.UnixNano())
	topics := kafkawire.PrefixedTopics(run)
	layout := kafkawire.Layout{Partitions: cfg.Partitions}
	specs := append(kafkawire.CoreSpecs(topics, layout), kafkawire.GatewaySpec(topics, layout, "floor"))
	admin, err := cfg.Kafka.NewAdmin()
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range specs {
			admin.DeleteTopic(s.Name)
		}
	}()
	gwTopic := topics.Gateway("floor")

	m := newMeter(cfg)
	sink, err := startSink(cfg.Kafka, gwTopic, cfg.Partitions, m)
	if err != nil {
		return nil, err
	}
	defer sink.close()

	seq := newSequencingRelay(cfg, topics, run)
	seqGroup, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: cfg.Kafka, GroupID: run + ".a", Topic: topics.Raw,
		MaxBatch: 5000, Linger: sequencer.DefaultBatchMaxWait, Logger: cfg.Logger}, seq)
	if err != nil {
		return nil, err
	}
	fwd := &forwardingRelay{cfg: cfg, topic: gwTopic}
	fwdGroup, err := kafkawire.NewGroup(kafkawire.GroupConfig{Kafka: cfg.Kafka, GroupID: run + ".b", Topic: topics.Sequenced,
		MaxBatch: 1000, CommitInterval: fanout.DefaultCommitInterval, Logger: cfg.Logger}, fwd)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Kafka.IdempotentProducerConfig()
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner // as the fanout's: it picks the partition
	if fwd.producer, err = sarama.NewSyncProducer(cfg.Kafka.BrokerList(), pcfg); err != nil {
		return nil, err
	}
	defer fwd.producer.Close()

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	relays, rctx := errgroup.WithContext(rctx)
	relays.Go(func() error { defer seq.Close(); return seqGroup.Run(rctx) })
	relays.Go(func() error { return fwdGroup.Run(rctx) })
	defer relays.Wait()

	for seqGroup.Ready() != nil || fwdGroup.Ready() != nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	producer, err := cfg.Kafka.NewSender(topics.Raw, kafkawire.DefaultSendLinger)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	if err := m.fire(ctx, producer); err != nil {
		return nil, err
	}
	m.drain(ctx)
	stop()
	if err := relays.Wait(); err != nil {
		return nil, err
	}
	return m.result(started), nil
}

// sequencingRelay is the sequencer's shape with no logic: per input record
// one sequenced record and one state record, in shared transactions.
type sequencingRelay struct {
	*kafkawire.TxnStage
	topics kafkawire.Topics
}

func newSequencingRelay(cfg Config, topics kafkawire.Topics, run string) *sequencingRelay {
	r := &sequencingRelay{topics: topics}
	r.TxnStage = kafkawire.NewTxnStage(kafkawire.TxnConfig{Kafka: cfg.Kafka, TransactionalID: run + ".a",
		Linger: cfg.TransactionLinger, Logger: cfg.Logger}, r.open)
	return r
}

func (r *sequencingRelay) open(_ *kafkawire.Session, p int32, _ *kafkawire.Txns) (kafkawire.TxnPartition, error) {
	return &sequencingPartition{r: r, p: p}, nil
}

type sequencingPartition struct {
	r *sequencingRelay
	p int32
}

func (sp *sequencingPartition) Process(b kafkawire.Batch) (kafkawire.Unit, bool, error) {
	if len(b.Records) == 0 {
		return kafkawire.Unit{}, false, nil
	}
	now := time.Now().UnixNano()
	msgs := make([]*sarama.ProducerMessage, 0, 2*len(b.Records))
	for _, m := range b.Records {
		v := binary.BigEndian.AppendUint64(append([]byte(nil), m.Value...), uint64(now))
		msgs = append(msgs,
			&sarama.ProducerMessage{Topic: sp.r.topics.Sequenced, Partition: sp.p, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(v)},
			&sarama.ProducerMessage{Topic: sp.r.topics.SequencerState, Partition: sp.p, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(v[:headerBytes])})
	}
	return kafkawire.Unit{Messages: msgs, Topic: sp.r.topics.Raw, Partition: sp.p, Offset: b.Next}, true, nil
}

func (sp *sequencingPartition) Close() {}

// forwardingRelay is the fanout's shape with no logic: each sequenced
// record to the gateway topic, offsets committed periodically.
type forwardingRelay struct {
	cfg      Config
	topic    string
	producer sarama.SyncProducer
}

func (f *forwardingRelay) BeforeSession(context.Context) error { return nil }
func (f *forwardingRelay) Setup(*kafkawire.Session) error      { return nil }
func (f *forwardingRelay) Cleanup(*kafkawire.Session)          {}

func (f *forwardingRelay) Open(*kafkawire.Session, int32) (kafkawire.Partition, error) {
	return forwardingPartition{f}, nil
}

type forwardingPartition struct{ f *forwardingRelay }

func (fp forwardingPartition) Process(b kafkawire.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	msgs := make([]*sarama.ProducerMessage, len(b.Records))
	for i, m := range b.Records {
		msgs[i] = &sarama.ProducerMessage{Topic: fp.f.topic, Partition: int32(kafkawire.PartitionFor(m.Key, int(fp.f.cfg.Partitions))),
			Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value)}
	}
	return fp.f.producer.SendMessages(msgs)
}

func (forwardingPartition) Close() {}

// sink consumes the gateway topic from its end, as a gateway does.
type sink struct {
	consumer sarama.Consumer
	wg       sync.WaitGroup
	pcs      []sarama.PartitionConsumer
}

func startSink(cfg kafkawire.Config, topic string, partitions int32, m *meter) (*sink, error) {
	c, err := sarama.NewConsumer(cfg.BrokerList(), cfg.Sarama())
	if err != nil {
		return nil, err
	}
	s := &sink{consumer: c}
	for p := range partitions {
		pc, err := kafkawire.ConsumePartition(context.Background(), c, topic, p, sarama.OffsetNewest)
		if err != nil {
			s.close()
			return nil, err
		}
		s.pcs = append(s.pcs, pc)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for msg := range pc.Messages() {
				m.arrived(msg.Value, time.Now())
			}
		}()
	}
	return s, nil
}

func (s *sink) close() {
	for _, pc := range s.pcs {
		pc.AsyncClose()
	}
	s.wg.Wait()
	s.consumer.Close()
}

// meter fires the load and measures what arrives.
type meter struct {
	cfg     Config
	payload []byte
	changed chan struct{}

	accepted, failed atomic.Int64

	mu        sync.Mutex
	sends     int
	lastSend  time.Time
	loadStart time.Time
	arrivals  map[int64]bool
	dups      int
	lat       []time.Duration
	toRelay   []time.Duration
	fromRelay []time.Duration
	lastArr   time.Time
	late      int
}

func newMeter(cfg Config) *meter {
	return &meter{cfg: cfg, payload: make([]byte, cfg.PayloadBytes), changed: make(chan struct{}, 1), arrivals: map[int64]bool{}}
}

// fire writes record i at its intended time, each on its own goroutine
// (a send waits for the broker's acknowledgement, as ingest's do).
func (m *meter) fire(ctx context.Context, producer *kafkawire.Sender) error {
	start := time.Now()
	m.mu.Lock()
	m.loadStart = start
	m.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	return loadgen.OpenLoop(ctx, start, m.cfg.Rate, m.cfg.Duration, nil, func(i int, due time.Time) error {
		v := binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano()))
		v = binary.BigEndian.AppendUint64(v, uint64(i))
		v = append(v, m.payload...)
		key := fmt.Appendf(nil, "c%d", i%m.cfg.Keys)
		m.mu.Lock()
		m.sends++
		m.lastSend = due
		if loadgen.Late(due, time.Now()) {
			m.late++
		}
		m.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := producer.Send(wctx, key, v); err != nil {
				m.failed.Add(1)
				m.cfg.Logger.Warn("floor: produce failed", "err", err)
				return
			}
			m.accepted.Add(1)
		}()
		return nil
	})
}

func (m *meter) arrived(v []byte, now time.Time) {
	if len(v) < headerBytes+8 {
		return
	}
	due := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	id := int64(binary.BigEndian.Uint64(v[8:]))
	relayed := time.Unix(0, int64(binary.BigEndian.Uint64(v[len(v)-8:])))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.arrivals[id] {
		m.dups++
		return
	}
	m.arrivals[id] = true
	m.lat = append(m.lat, now.Sub(due))
	m.toRelay = append(m.toRelay, relayed.Sub(due))
	m.fromRelay = append(m.fromRelay, now.Sub(relayed))
	m.lastArr = now
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// drain waits until every acknowledged record arrived, or Drain passed.
func (m *meter) drain(ctx context.Context) {
	deadline := time.NewTimer(m.cfg.Drain)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		n := len(m.arrivals)
		m.mu.Unlock()
		if int64(n) >= m.accepted.Load() {
			return
		}
		select {
		case <-m.changed:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (m *meter) result(started time.Time) *loadgen.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	accepted := int(m.accepted.Load())
	r := &loadgen.Result{
		Config:    loadgen.ResultConfig{Target: "floor", Rate: m.cfg.Rate, Duration: m.cfg.Duration.String(), Drain: m.cfg.Drain.String()},
		StartedAt: started.UTC(),
		Counts: loadgen.Counts{Sends: m.sends, Accepted: accepted, Errors: int(m.failed.Load()), Deliveries: len(m.arrivals),
			ExpectedDeliveries: accepted, LateSends: m.late},
		Latency:   loadgen.Summarize(m.lat),
		Legs:      &loadgen.Legs{SendToSequenced: loadgen.Summarize(m.toRelay), SequencedToDelivered: loadgen.Summarize(m.fromRelay)},
		Anomalies: map[string]int{},
		Histogram: loadgen.NewHistogram(),
		Window:    loadgen.Window{LoadStart: m.loadStart.UTC(), LastSend: m.lastSend.UTC(), LastArrival: m.lastArr.UTC()},
	}
	for _, l := range m.lat {
		r.Histogram.Add(l)
	}
	if lost := accepted - len(m.arrivals); lost > 0 {
		r.Anomalies[loadgen.AnomalyLost] = lost
	}
	if m.dups > 0 {
		r.Anomalies[loadgen.AnomalyDuplicate] = m.dups
	}
	if secs := m.lastSend.Sub(m.loadStart).Seconds(); secs > 0 {
		r.Throughput.AcceptedPerSec = float64(accepted) / secs
	}
	if span := m.lastArr.Sub(m.loadStart).Seconds(); span > 0 {
		r.Throughput.DeliveriesPerSec = float64(len(m.arrivals)) / span
	}
	return r
}
