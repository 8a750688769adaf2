package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/presence"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// presenceView follows the whole presence topic into a table that every
// partition worker reads.
type presenceView struct {
	mu    sync.RWMutex
	table *presence.Table
	// connects are the recent connections applied, oldest first, numbered
	// from connectsBase: each partition worker tells their gateways from
	// which offset on it routes to them (RoutingStarted).
	connects     []connect
	connectsBase uint64
	caughtUp     atomic.Bool
	ready        chan struct{} // closed once caught up
	log          *slog.Logger
}

// connect is one connection the view applied, at when.
type connect struct {
	p    *imv1.Presence
	when time.Time
}

// connectWindow is how long a connection is remembered for the workers:
// a worker that takes over a partition tells the gateways of the
// connections this recent (older ones have settled by their timed passes).
const connectWindow = 30 * time.Second

func newPresenceView(log *slog.Logger) *presenceView {
	return &presenceView{table: presence.NewTable(), ready: make(chan struct{}), log: log}
}

func (v *presenceView) markCaughtUp() {
	if !v.caughtUp.Swap(true) {
		close(v.ready)
		v.log.Info("presence table caught up")
	}
}

// run follows the topic until ctx ends. A failure (the topic created a
// moment ago and not yet known to the broker asked, a leader moving) is
// retried with backoff, never returned: the fanout must not exit on a
// transient broker condition. Following again from the start is safe:
// the table keeps the newest record of each device whatever the order.
func (v *presenceView) run(ctx context.Context, client sarama.Client, topic string) error {
	retry := backoff.New(200*time.Millisecond, 5*time.Second)
	for {
		err := v.follow(ctx, client, topic)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		v.log.Warn("following the presence topic failed; retrying", "err", err, "backoff", retry.Next())
		retry.Wait(ctx)
	}
}

// follow consumes every partition from the start; it marks the view
// caught up once each partition reached the end it had when follow began.
func (v *presenceView) follow(ctx context.Context, client sarama.Client, topic string) error {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("presence consumer: %w", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("presence topic %s: %w", topic, err)
	}
	pending := map[int32]int64{} // partition -> offset to reach
	in := make(chan *sarama.ConsumerMessage)
	var pcs []sarama.PartitionConsumer
	defer func() { kafkawire.ClosePartitions(pcs) }()
	for _, p := range parts {
		end, err := kafkawire.NewestOffset(ctx, client, topic, p)
		if err != nil {
			return fmt.Errorf("presence topic %s/%d: %w", topic, p, err)
		}
		if end > 0 {
			pending[p] = end
		}
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("presence topic %s/%d: %w", topic, p, err)
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				select {
				case in <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if len(pending) == 0 {
		v.markCaughtUp()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-in:
			v.apply(m)
			if end, ok := pending[m.Partition]; ok && m.Offset+1 >= end {
				delete(pending, m.Partition)
				if len(pending) == 0 {
					v.markCaughtUp()
				}
			}
		}
	}
}

func (v *presenceView) apply(m *sarama.ConsumerMessage) {
	if len(m.Value) == 0 {
		return // a tombstone: the compacted topic forgets the device
	}
	p := &imv1.Presence{}
	if err := imv1.Unmarshal(m.Value, p); err != nil {
		v.log.Warn("skipping presence record", "partition", m.Partition, "offset", m.Offset, "err", err)
		return
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.table.Apply(p) && p.Online && now.Sub(time.UnixMilli(p.AtMs)) < connectWindow {
		v.connects = append(v.connects, connect{p: p, when: now})
	}
	drop := 0
	for drop < len(v.connects) && now.Sub(v.connects[drop].when) >= connectWindow {
		drop++
	}
	v.connects = v.connects[drop:]
	v.connectsBase += uint64(drop)
}

// connectsSince returns the connections applied after the first seen of
// them (0: from the oldest remembered) and the count to pass next time.
func (v *presenceView) connectsSince(seen uint64) (next uint64, cs []*imv1.Presence) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	next = v.connectsBase + uint64(len(v.connects))
	for _, c := range v.connects[max(seen, v.connectsBase)-v.connectsBase:] {
		cs = append(cs, c.p)
	}
	return next, cs
}

// devices returns, per gateway, the connected devices of users.
func (v *presenceView) devices(users []string) map[string][]*imv1.DeviceRef {
	out := map[string][]*imv1.DeviceRef{}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, u := range users {
		for gw, devs := range v.table.Devices(u) {
			for _, d := range devs {
				out[gw] = append(out[gw], &imv1.DeviceRef{UserId: u, DeviceId: d})
			}
		}
	}
	return out
}

// device returns the gateway of one device ("" when not connected).
func (v *presenceView) device(user, device string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for gw, devs := range v.table.Devices(user) {
		for _, d := range devs {
			if d == device {
				return gw
			}
		}
	}
	return ""
}
