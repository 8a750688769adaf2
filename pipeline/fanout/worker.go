package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// worker routes one partition of the sequenced topic.
type worker struct {
	f       *Fanout
	p       int32
	log     *slog.Logger
	members *Members
}

// startWorker restores the partition's membership periods: everything the
// previous owner persisted, which is at or ahead of the committed offset
// (periods are written before offsets are committed).
func (f *Fanout) startWorker(ctx context.Context, p int32) (*worker, error) {
	start := time.Now()
	topic := f.cfg.Topics.FanoutMembers
	end, err := f.client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("partition %d: end of %s: %w", p, topic, err)
	}
	latest := map[string]*imv1.FanoutMembership{}
	if end > 0 {
		consumer, err := sarama.NewConsumerFromClient(f.client)
		if err != nil {
			return nil, err
		}
		defer consumer.Close()
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("partition %d: read %s: %w", p, topic, err)
		}
		defer pc.Close()
	read:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case err := <-pc.Errors():
				return nil, fmt.Errorf("partition %d: read %s: %w", p, topic, err)
			case m := <-pc.Messages():
				fm := &imv1.FanoutMembership{}
				if len(m.Value) > 0 {
					if err := imv1.Unmarshal(m.Value, fm); err != nil {
						return nil, fmt.Errorf("partition %d: %s offset %d: %w", p, topic, m.Offset, err)
					}
					latest[string(m.Key)] = fm
				}
				if m.Offset+1 >= end {
					break read
				}
			}
		}
	}
	entries := make([]*imv1.FanoutMembership, 0, len(latest))
	for _, fm := range latest {
		entries = append(entries, fm)
	}
	w := &worker{f: f, p: p, log: f.log.With("partition", p), members: RestoreMembers(entries)}
	w.log.Info("partition restored", "memberships", len(entries), "took", time.Since(start).Round(time.Millisecond))
	return w, nil
}

func (w *worker) close() {}

func (w *worker) run(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
	drain:
		for len(batch) < w.f.cfg.BatchMaxRecords {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := w.route(batch); err != nil {
			// Not committed: the next owner (or this one after the rebalance
			// the error causes) routes the batch again.
			w.log.Error("routing failed", "err", err)
			return err
		}
		last := batch[len(batch)-1]
		sess.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
		sess.Commit()
	}
}

// route persists membership changes, then writes one delivery per gateway
// and entry.
func (w *worker) route(batch []*sarama.ConsumerMessage) error {
	var deliveries []*sarama.ProducerMessage
	for _, m := range batch {
		r := &imv1.SequencedRecord{}
		if err := imv1.Unmarshal(m.Value, r); err != nil {
			w.log.Warn("skipping undecodable sequenced record", "offset", m.Offset, "err", err)
			w.f.metrics.skipped.Inc()
			continue
		}
		w.f.metrics.entries.Inc()
		var byGateway map[string][]*imv1.DeviceRef
		if r.Seq == 0 { // a notice goes to the sending device only
			if gw := w.f.presence.device(r.SenderUserId, r.SenderDeviceId); gw != "" {
				byGateway = map[string][]*imv1.DeviceRef{gw: {{UserId: r.SenderUserId, DeviceId: r.SenderDeviceId}}}
			}
		} else {
			byGateway = w.f.presence.devices(w.members.Recipients(r))
		}
		for gw, devices := range byGateway {
			topic := w.f.cfg.Topics.Gateway(gw)
			if !w.f.gateways.exists(topic) {
				w.f.metrics.dropped.Inc() // the gateway is gone; its devices catch up from history
				continue
			}
			b, err := imv1.Marshal(&imv1.GatewayDelivery{Version: imv1.Version, Record: r, Recipients: devices})
			if err != nil {
				return err
			}
			deliveries = append(deliveries, &sarama.ProducerMessage{Topic: topic,
				Key: sarama.StringEncoder(r.ConversationId), Value: sarama.ByteEncoder(b)})
		}
	}
	var state []*sarama.ProducerMessage
	for _, fm := range w.members.TakeChanges() {
		b, err := imv1.Marshal(fm)
		if err != nil {
			return err
		}
		state = append(state, &sarama.ProducerMessage{Topic: w.f.cfg.Topics.FanoutMembers, Partition: w.p,
			Key: sarama.StringEncoder(fm.ConversationId + "\x00" + fm.UserId), Value: sarama.ByteEncoder(b)})
	}
	if len(state) > 0 {
		if err := w.f.state.SendMessages(state); err != nil {
			return fmt.Errorf("write membership periods: %w", err)
		}
	}
	if len(deliveries) > 0 {
		if err := w.f.delivery.SendMessages(deliveries); err != nil {
			return fmt.Errorf("write deliveries: %w", err)
		}
		w.f.metrics.deliveries.Add(float64(len(deliveries)))
	}
	return nil
}

// gatewayTopics remembers which gateway topics exist, for a few seconds.
type gatewayTopics struct {
	client sarama.Client
	mu     sync.Mutex
	known  map[string]gatewayCheck
}

type gatewayCheck struct {
	exists bool
	at     time.Time
}

func newGatewayTopics(client sarama.Client) *gatewayTopics {
	return &gatewayTopics{client: client, known: map[string]gatewayCheck{}}
}

func (g *gatewayTopics) exists(topic string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.known[topic]; ok && time.Since(c.at) < 5*time.Second {
		return c.exists
	}
	_, err := g.client.Partitions(topic)
	g.known[topic] = gatewayCheck{exists: err == nil, at: time.Now()}
	return err == nil
}
