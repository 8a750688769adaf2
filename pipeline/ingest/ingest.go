package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
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
	senders  map[string]*kafkawire.Sender // per raw topic, connected on its first Submit
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
		senders:   map[string]*kafkawire.Sender{},
	}, nil
}

// Submit validates s and writes it to the raw topic, keyed by its
// conversation id. It returns nil only once the broker acknowledged the
// record (acks=all, I6), an *Error for a send that fails Validate, or an
// error wrapping ErrUnavailable when the broker did not acknowledge within
// WriteTimeout or ctx ended first.
func (i *Ingester) Submit(ctx context.Context, s Send) error {
	sub, err := i.Enqueue(ctx, s)
	if err != nil {
		return err
	}
	return sub.Wait(ctx)
}

// Submission is a send handed to the producer; Wait gives its outcome.
type Submission struct {
	i          *Ingester
	conv, cmid string // for the log
	key, value []byte // the record, written again if the producer gives up on it
	pending    *kafkawire.Pending
	start      time.Time
	deadline   time.Time
}

// Enqueue validates s and hands it to the producer without waiting for
// the broker, so that one caller can have several sends in flight: sends
// enqueued one after another keep their order on the raw topic (one
// conversation is one partition). It returns the errors Submit returns
// before the write (an *Error, ErrUnavailable); Wait returns the rest.
// WriteTimeout counts from here.
func (i *Ingester) Enqueue(ctx context.Context, s Send) (*Submission, error) {
	if err := validate(s, i.cfg.Limits); err != nil {
		i.metrics.sends.WithLabelValues(resultInvalid).Inc()
		return nil, err
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
	switch {
	case s.Message != nil:
		rec.Body = &imv1.RawRecord_Message{Message: s.Message}
	case s.Revision != nil:
		rec.Body = &imv1.RawRecord_Revision{Revision: s.Revision}
	case s.Read != nil:
		rec.Body = &imv1.RawRecord_Read{Read: s.Read}
	default:
		rec.Body = &imv1.RawRecord_Control{Control: s.Control}
	}
	value, err := imv1.Marshal(rec)
	if err != nil { // Validate should have caught whatever protobuf refuses
		i.metrics.sends.WithLabelValues(resultInvalid).Inc()
		return nil, invalid("cannot encode the send: %v", err)
	}
	sub := &Submission{i: i, conv: s.ConversationID, cmid: s.ClientMsgID, key: []byte(s.ConversationID), value: value,
		start: time.Now()}
	sub.deadline = sub.start.Add(i.cfg.WriteTimeout)
	ctx, cancel := context.WithDeadline(ctx, sub.deadline)
	defer cancel()
	producer, err := i.sender(ctx)
	if err != nil {
		i.metrics.sends.WithLabelValues(resultUnavailable).Inc()
		return nil, fmt.Errorf("submit %s: %w: %w", s.ClientMsgID, ErrUnavailable, err)
	}
	sub.pending, err = producer.Enqueue(ctx, sub.key, sub.value)
	if err != nil {
		return nil, sub.unavailable(err)
	}
	return sub, nil
}

// Wait returns nil once the broker acknowledged the send, or an error
// wrapping ErrUnavailable when it did not within WriteTimeout of the
// Enqueue or ctx ended first. Call it once.
//
// A record the producer gave up on (its broker restarting, a leader
// moving) is written again, to the raw topic sends go to then, until the
// deadline: failed at once, the send failed its client's later sends of
// the conversation too (refused until it is resent, for I2), and a broker
// restart cost each one a retry from the client. Written twice, it is
// deduplicated by the sequencer (I3). Only for callers that wait for each
// send before the next of its conversation (the gateway does): a record
// written again after a later one was would rely on the sequencer's hold
// window for its order.
func (sub *Submission) Wait(ctx context.Context) error {
	ctx, cancel := context.WithDeadline(ctx, sub.deadline)
	defer cancel()
	err := sub.pending.Wait(ctx)
	for retry := backoff.New(100*time.Millisecond, time.Second); err != nil && !errors.Is(err, kafkawire.ErrSenderClosed) && retry.Wait(ctx); {
		sub.i.metrics.rewrites.Inc()
		var producer *kafkawire.Sender
		if producer, err = sub.i.sender(ctx); err != nil {
			continue
		}
		if sub.pending, err = producer.Enqueue(ctx, sub.key, sub.value); err == nil {
			err = sub.pending.Wait(ctx)
		}
	}
	sub.i.metrics.produce.Observe(time.Since(sub.start).Seconds())
	if err != nil {
		return sub.unavailable(err)
	}
	sub.i.metrics.sends.WithLabelValues(resultAccepted).Inc()
	return nil
}

func (sub *Submission) unavailable(err error) error {
	sub.i.metrics.sends.WithLabelValues(resultUnavailable).Inc()
	sub.i.cfg.Logger.Warn("send not acknowledged", "conversation_id", sub.conv, "client_msg_id", sub.cmid, "err", err)
	return fmt.Errorf("submit %s: %w: %w", sub.cmid, ErrUnavailable, err)
}

// topic is the raw topic sends go to now: Config.Topic, or with
// Config.Control the write generation's in a view read to the control
// topic's end within ControlStale, waiting for one until ctx ends.
func (i *Ingester) topic(ctx context.Context) (string, error) {
	if i.cfg.Control == nil {
		return i.cfg.Topic, nil
	}
	g, err := i.cfg.Control.Fresh(ctx, i.cfg.ControlStale)
	if err != nil {
		age, _ := i.cfg.Control.Age()
		return "", fmt.Errorf("the control topic was not read to its end for %v (more than %v): the generation to write to is not known: %w",
			age.Round(time.Millisecond), i.cfg.ControlStale, err)
	}
	return generation.Topics(kafkawire.Topics{Raw: i.cfg.Topic}, generation.WriteTo(g).GetId()).Raw, nil
}

// sender is the producer of the raw topic sends go to now, connected on
// first use (New does not contact the brokers). A previous generation's
// stays open for the sends still in flight to it, until Close.
func (i *Ingester) sender(ctx context.Context) (*kafkawire.Sender, error) {
	topic, err := i.topic(ctx)
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, fmt.Errorf("ingester closed: %w", kafkawire.ErrSenderClosed)
	}
	if i.senders[topic] == nil {
		p, err := i.cfg.Kafka.NewSender(topic, i.cfg.Linger)
		if err != nil {
			return nil, err
		}
		i.senders[topic] = p
		if len(i.senders) > 1 {
			i.cfg.Logger.Info("ingest writes to another raw topic", "topic", topic)
		}
	}
	return i.senders[topic], nil
}

// Ready reports whether the raw topic sends go to now is known (a fresh
// view of the control topic before ctx ends) and its metadata reachable with a leader for
// every partition, so a Submit can be acknowledged now.
func (i *Ingester) Ready(ctx context.Context) error {
	topic, err := i.topic(ctx)
	if err != nil {
		return err
	}
	md, err := i.meta.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 {
		return fmt.Errorf("metadata of %s: %d topics in the answer", topic, len(md.Topics))
	}
	t := md.Topics[0]
	if t.Error != nil {
		return fmt.Errorf("topic %s: %w", topic, t.Error)
	}
	if len(t.Partitions) == 0 {
		return fmt.Errorf("topic %s has no partitions", topic)
	}
	for _, p := range t.Partitions {
		if p.Error != nil {
			return fmt.Errorf("topic %s partition %d: %w", topic, p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Errorf("topic %s partition %d has no leader", topic, p.ID)
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
	for topic, p := range i.senders {
		if err := p.Close(); err != nil && i.closeErr == nil {
			i.closeErr = fmt.Errorf("close ingest producer of %s: %w", topic, err)
		}
	}
	i.transport.CloseIdleConnections()
	return i.closeErr
}
