package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/latency"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// worker routes one partition of the sequenced topic.
type worker struct {
	f       *Fanout
	p       int32
	log     *slog.Logger
	members *Members
	heads   *Heads
	// connectsSeen counts the presence view's connections this worker has
	// told their gateways about (RoutingStarted); next is the offset after
	// the last record it routed, -1 before the first.
	connectsSeen uint64
	next         int64
}

// startWorker restores the partition's membership periods: everything the
// previous owner persisted, which is at or ahead of the committed offset
// (periods are written before offsets are committed).
func (f *Fanout) startWorker(ctx context.Context, p int32) (*worker, error) {
	start := time.Now()
	topic := f.topics.FanoutMembers
	end, err := kafkawire.NewestOffset(ctx, f.offsets, topic, p)
	if err != nil {
		return nil, fmt.Errorf("partition %d: end of %s: %w", p, topic, err)
	}
	latest := map[string]*imv1.FanoutMembership{}
	if end > 0 {
		pc, err := kafkawire.ConsumePartition(ctx, f.restorer, topic, p, sarama.OffsetOldest)
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
	if _, imported := latest[generation.ImportedKey]; !imported && f.cfg.Generation > generation.First {
		if err := f.importPartition(ctx, p); err != nil {
			return nil, err
		}
		return f.startWorker(ctx, p) // restore what was imported
	}
	delete(latest, generation.ImportedKey)
	heads := NewHeads()
	entries := make([]*imv1.FanoutMembership, 0, len(latest))
	for _, fm := range latest {
		if !heads.restore(fm) {
			entries = append(entries, fm)
		}
	}
	w := &worker{f: f, p: p, log: f.log.With("partition", p), members: RestoreMembers(entries), heads: heads, next: -1}
	w.log.Info("partition restored", "memberships", len(entries), "heads", len(heads.last), "heads_complete", heads.complete,
		"took", time.Since(start).Round(time.Millisecond))
	return w, nil
}

// Close: the partition was revoked or the session ended.
func (w *worker) Close() { w.f.metrics.partitions.Dec() }

// Process routes a batch: membership changes persisted and deliveries
// written, in one request, before the group may commit the batch's
// offsets. An error ends the session; the batch is routed again.
//
// Connections the presence view applied since the last batch are routed
// to from this batch on; each one's gateway is told so (RoutingStarted),
// an idle tick included, so that it settles the device exactly.
func (w *worker) Process(b kafkawire.Batch) error {
	seen, connects := w.f.presence.connectsSince(w.connectsSeen)
	if len(b.Records) == 0 && len(connects) == 0 {
		return nil
	}
	from := w.next
	switch {
	case from >= 0:
	case len(b.Records) > 0:
		from = b.Records[0].Offset
	default:
		from = b.Next
	}
	if w.next < 0 && from == 0 && w.f.cfg.Generation == generation.First {
		// Nothing routed before: every head is known. (A later
		// generation's partition is complete only if its import said so.)
		w.heads.StartComplete()
	}
	// Notices list the heads as of from, so before this batch is routed.
	started, err := w.routingStarted(connects, from)
	if err != nil {
		return err
	}
	msgs, sequenced, err := w.route(b.Records)
	if err != nil {
		return err
	}
	msgs = append(msgs, started...)
	if len(msgs) > 0 {
		if err := w.f.producer.SendMessages(msgs); err != nil {
			return fmt.Errorf("write deliveries and membership periods: %w", err)
		}
	}
	w.f.metrics.routingStarted.Add(float64(len(started)))
	w.connectsSeen = seen
	if len(b.Records) > 0 {
		w.next = b.Next
	}
	now := time.Now()
	for _, ms := range sequenced {
		w.f.metrics.routeDelay.Observe(latency.SinceMillis(ms, now).Seconds())
	}
	return nil
}

// route turns a batch into its membership-period changes and one delivery
// per gateway and entry; sequenced are the entries' sequenced_at_ms.
func (w *worker) route(batch []*sarama.ConsumerMessage) (msgs []*sarama.ProducerMessage, sequenced []int64, err error) {
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
		if r.Seq > 0 && !w.heads.Observe(r.ConversationId, r.Epoch, r.Seq) {
			// Of an older epoch than the conversation's stream (the
			// sequencer's state rebuilt since): obsolete, routed to nobody.
			w.f.metrics.skipped.Inc()
			continue
		}
		if r.GetReadReceipt() != nil {
			byGateway = w.receiptDevices(r)
		} else if r.Seq == 0 { // a notice goes to the sending device only
			if gw := w.f.presence.device(r.SenderUserId, r.SenderDeviceId); gw != "" {
				byGateway = map[string][]*imv1.DeviceRef{gw: {{UserId: r.SenderUserId, DeviceId: r.SenderDeviceId}}}
			}
		} else {
			byGateway = w.f.presence.devices(w.members.Recipients(r))
		}
		if len(byGateway) > 0 {
			sequenced = append(sequenced, r.SequencedAtMs)
		}
		for gw, devices := range byGateway {
			topic := w.f.topics.Gateway(gw)
			parts := w.f.gateways.partitions(topic)
			if parts == 0 {
				w.f.metrics.dropped.Inc() // the gateway is gone; its devices catch up from history
				continue
			}
			b, err := imv1.Marshal(&imv1.GatewayDelivery{Version: imv1.Version, Record: r, Recipients: devices})
			if err != nil {
				return nil, nil, err
			}
			deliveries = append(deliveries, &sarama.ProducerMessage{Topic: topic,
				Partition: int32(kafkawire.PartitionFor([]byte(r.ConversationId), int(parts))),
				Key:       sarama.StringEncoder(r.ConversationId), Value: sarama.ByteEncoder(b)})
		}
	}
	for _, fm := range append(w.members.TakeChanges(), w.heads.TakeChanges()...) {
		b, err := imv1.Marshal(fm)
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: w.f.topics.FanoutMembers, Partition: w.p,
			Key: sarama.StringEncoder(key(fm)), Value: sarama.ByteEncoder(b)})
	}
	w.f.metrics.deliveries.Add(float64(len(deliveries)))
	return append(msgs, deliveries...), sequenced, nil
}

// receiptDevices are the connected devices a read receipt goes to
// (Members.ReceiptRecipients) but the one that marked it, which is answered
// by nothing, as for an ack.
func (w *worker) receiptDevices(r *imv1.SequencedRecord) map[string][]*imv1.DeviceRef {
	byGateway := w.f.presence.devices(w.members.ReceiptRecipients(r, max(w.f.cfg.ReceiptsMaxMembers, 0)))
	for gw, devs := range byGateway {
		devs = slices.DeleteFunc(devs, func(d *imv1.DeviceRef) bool {
			return d.UserId == r.SenderUserId && d.DeviceId == r.SenderDeviceId
		})
		if len(devs) == 0 {
			delete(byGateway, gw)
		} else {
			byGateway[gw] = devs
		}
	}
	return byGateway
}

// routingStarted tells the gateway of each connection that this
// partition is routed to it from offset from on, and where each of the
// user's conversations is before that offset.
func (w *worker) routingStarted(connects []*imv1.Presence, from int64) ([]*sarama.ProducerMessage, error) {
	var msgs []*sarama.ProducerMessage
	for _, c := range connects {
		topic := w.f.topics.Gateway(c.GatewayId)
		parts := w.f.gateways.partitions(topic)
		if parts == 0 {
			continue // the gateway is gone
		}
		convs, complete := w.heads.ConversationsOf(c.UserId, w.members)
		b, err := imv1.Marshal(&imv1.GatewayDelivery{Version: imv1.Version, RoutingStarted: &imv1.RoutingStarted{
			UserId: c.UserId, DeviceId: c.DeviceId, Epoch: c.Epoch, SequencedPartition: w.p,
			SequencedOffset: from, SequencedPartitions: w.f.partitions, Conversations: convs, ConversationsComplete: complete,
			SequencedTopic: w.f.topics.Sequenced}})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Partition: int32(kafkawire.PartitionFor([]byte(c.UserId), int(parts))),
			Key:       sarama.StringEncoder(c.UserId), Value: sarama.ByteEncoder(b)})
	}
	return msgs, nil
}

// gatewayTopics remembers which gateway topics exist, for a few seconds.
type gatewayTopics struct {
	client sarama.Client
	mu     sync.Mutex
	known  map[string]gatewayCheck
}

type gatewayCheck struct {
	partitions int32 // 0: the topic does not exist
	at         time.Time
}

func newGatewayTopics(client sarama.Client) *gatewayTopics {
	return &gatewayTopics{client: client, known: map[string]gatewayCheck{}}
}

// partitions is the partition count of a gateway's topic, 0 if it is gone.
func (g *gatewayTopics) partitions(topic string) int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.known[topic]; ok && time.Since(c.at) < 5*time.Second {
		return c.partitions
	}
	ps, err := g.client.Partitions(topic)
	n := int32(len(ps))
	if err != nil {
		n = 0
	}
	g.known[topic] = gatewayCheck{partitions: n, at: time.Now()}
	return n
}
