package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// ErrUnavailable means the broker did not acknowledge a send in time (or the
// Ingester is closed). The send may or may not have been written: the caller
// retries with the same client_msg_id, which the sequencer deduplicates (I3).
// Its protocol code is CodeUnavailable.
var ErrUnavailable = errors.New("ingest unavailable")

// Ingester validates sends and produces them to the raw topic. It is safe
// for concurrent use; concurrent Submits share the producer's requests.
type Ingester struct {
	cfg       Config
	meta      *kafka.Client // for Ready
	transport *kafka.Transport
	metrics   *metrics

	mu       sync.Mutex
	producer *kafkawire.Sender // connected on the first Submit
	closed   bool
	closeErr error
}

// New builds an Ingester. It does not contact the broker: a Submit or Ready
// does, so a service can start while Kafka is still coming up.
func New(cfg Config) (*Ingester, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	transport := &kafka.Transport{ClientID: cfg.Kafka.ClientID}
	return &Ingester{
		cfg:       cfg,
		meta:      &kafka.Client{Addr: kafka.TCP(cfg.Kafka.BrokerList()...), Transport: transport},
		transport: transport,
		metrics:   m,
	}, nil
}

// Submit validates s and writes it to the raw topic, keyed by its
// conversation id. It returns nil only once the broker acknowledged the
// record (acks=all, I6), an *Error for a send that fails Validate, or an
// error wrapping ErrUnavailable when the broker did not acknowledge within
// WriteTimeout or ctx ended first.
func (i *Ingester) Submit(ctx context.Context, s Send) error {
	if err := validate(s, i.cfg.Limits); err != nil {
		i.metrics.sends.WithLabelValues(resultInvalid).Inc()
		return err
	}
	rec := &imv1.RawRecord{
		Version:        imv1.Version,
		ConversationId: s.ConversationID,
		ClientMsgId:    s.ClientMsgID,
		SenderUserId:   s.SenderUserID,
		SenderDeviceId: s.SenderDeviceID,
		ClientSeq:      s.ClientSeq,
		ReceivedAtMs:   time.Now().UnixMilli(),
		Origin:         i.cfg.Origin,
	}
	if s.Message != nil {
		rec.Body = &imv1.RawRecord_Message{Message: s.Message}
	} else {
		rec.Body = &imv1.RawRecord_Control{Control: s.Control}
	}
	value, err := imv1.Marshal(rec)
	if err != nil { // Validate should have caught whatever protobuf refuses
		i.metrics.sends.WithLabelValues(resultInvalid).Inc()
		return invalid("cannot encode the send: %v", err)
	}
	producer, err := i.sender()
	if err != nil {
		i.metrics.sends.WithLabelValues(resultUnavailable).Inc()
		return fmt.Errorf("submit %s: %w: %w", s.ClientMsgID, ErrUnavailable, err)
	}

	ctx, cancel := context.WithTimeout(ctx, i.cfg.WriteTimeout)
	defer cancel()
	start := time.Now()
	err = producer.Send(ctx, []byte(s.ConversationID), value)
	i.metrics.produce.Observe(time.Since(start).Seconds())
	if err != nil {
		i.metrics.sends.WithLabelValues(resultUnavailable).Inc()
		i.cfg.Logger.Warn("send not acknowledged", "conversation_id", s.ConversationID,
			"client_msg_id", s.ClientMsgID, "err", err)
		return fmt.Errorf("submit %s: %w: %w", s.ClientMsgID, ErrUnavailable, err)
	}
	i.metrics.sends.WithLabelValues(resultAccepted).Inc()
	return nil
}

// sender is the producer, connected on first use (New does not contact
// the broker, so a service can start before Kafka does).
func (i *Ingester) sender() (*kafkawire.Sender, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, errors.New("ingester closed")
	}
	if i.producer == nil {
		p, err := i.cfg.Kafka.NewSender(i.cfg.Topic, i.cfg.Linger)
		if err != nil {
			return nil, err
		}
		i.producer = p
	}
	return i.producer, nil
}

// Ready reports whether the raw topic's metadata is reachable and every
// partition has a leader, so a Submit can be acknowledged now.
func (i *Ingester) Ready(ctx context.Context) error {
	md, err := i.meta.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{i.cfg.Topic}})
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", i.cfg.Topic, err)
	}
	if len(md.Topics) != 1 {
		return fmt.Errorf("metadata of %s: %d topics in the answer", i.cfg.Topic, len(md.Topics))
	}
	t := md.Topics[0]
	if t.Error != nil {
		return fmt.Errorf("topic %s: %w", i.cfg.Topic, t.Error)
	}
	if len(t.Partitions) == 0 {
		return fmt.Errorf("topic %s has no partitions", i.cfg.Topic)
	}
	for _, p := range t.Partitions {
		if p.Error != nil {
			return fmt.Errorf("topic %s partition %d: %w", i.cfg.Topic, p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Errorf("topic %s partition %d has no leader", i.cfg.Topic, p.ID)
		}
	}
	return nil
}

// Close flushes the producer and releases its connections. Submits after
// Close fail with ErrUnavailable. Calling Close again returns the first
// result.
func (i *Ingester) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return i.closeErr
	}
	i.closed = true
	if i.producer != nil {
		if err := i.producer.Close(); err != nil {
			i.closeErr = fmt.Errorf("close ingest producer: %w", err)
		}
	}
	i.transport.CloseIdleConnections()
	return i.closeErr
}
