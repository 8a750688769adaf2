package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/backoff"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Stall detection (issue 12). A delivery path can stop without an error
// anywhere: a fanout frozen in its session, a gateway topic no longer
// routed to, a presence record gone wrong. The sequencers' heartbeats say
// how far each conversation has gone; a device that stays behind a head
// for StallAfter is read up to it from history, which is fed by another
// path (the history sink), and counted.

// streamHeads is the last seq of each recently active conversation, from
// the heads topic, and when the gateway learned it.
type streamHeads struct {
	mu sync.Mutex
	m  map[string]headSeen
}

type headSeen struct {
	seq, epoch uint64
	at         time.Time
}

func newStreamHeads() *streamHeads { return &streamHeads{m: map[string]headSeen{}} }

// observe takes a heartbeat. A head only moves forward, and keeps the
// time it was first seen at that value.
func (h *streamHeads) observe(sh *imv1.StreamHeads, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range sh.Heads {
		// Within an epoch a head only moves forward; a newer epoch (the
		// stream rebuilt from nothing) starts it afresh; an older one is stale.
		old := h.m[c.ConversationId]
		if c.Epoch > old.epoch || c.Epoch == old.epoch && c.Seq > old.seq {
			h.m[c.ConversationId] = headSeen{seq: c.Seq, epoch: c.Epoch, at: now}
		}
	}
}

// prune forgets heads learned before cutoff: every sweep since has
// compared them with the devices, and a quiet conversation's head costs
// memory on every gateway.
func (h *streamHeads) prune(cutoff time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for conv, s := range h.m {
		if s.at.Before(cutoff) {
			delete(h.m, conv)
		}
	}
}

func (h *streamHeads) get(conv string) (headSeen, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.m[conv]
	return s, ok
}

// followHeads consumes every partition of the heads topic from its end
// until ctx ends. The topic may not exist yet (a deployment from before
// it), or its partitions may not be readable now: the gateway serves
// meanwhile, without stall detection, and retries; it never ends the
// gateway.
func (g *Gateway) followHeads(ctx context.Context, consumer sarama.Consumer) error {
	topic := g.cfg.Topics.Heads
	wait := backoff.New(time.Second, 30*time.Second)
	for {
		parts, err := consumer.Partitions(topic)
		if err == nil && len(parts) == 0 {
			err = errors.New("no partitions")
		}
		if err == nil {
			err = g.consumeHeads(ctx, consumer, topic, parts)
		}
		if ctx.Err() != nil {
			return nil
		}
		g.log.Warn("not following the heads topic: stalled deliveries go undetected", "topic", topic, "err", err, "retry_in", wait.Next())
		if !wait.Wait(ctx) {
			return nil
		}
	}
}

// consumeHeads reads the heads topic's partitions from their end until
// ctx ends (nil) or one cannot be read.
func (g *Gateway) consumeHeads(ctx context.Context, consumer sarama.Consumer, topic string, parts []int32) error {
	pcs, err := kafkawire.ConsumePartitions(ctx, consumer, topic, parts, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	defer kafkawire.ClosePartitions(pcs)
	g.log.Info("following conversation heads", "topic", topic, "partitions", len(parts))
	eg, ctx := errgroup.WithContext(ctx)
	for _, pc := range pcs {
		eg.Go(func() error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case err := <-pc.Errors():
					g.log.Warn("consuming heads", "err", err)
				case m := <-pc.Messages():
					sh := &imv1.StreamHeads{}
					if err := imv1.Unmarshal(m.Value, sh); err != nil {
						g.log.Warn("skipping undecodable heads", "partition", m.Partition, "offset", m.Offset, "err", err)
						continue
					}
					g.heads.observe(sh, time.Now())
				}
			}
		})
	}
	return eg.Wait()
}

// sweepStalls compares every connection with the heads, a few times per
// StallAfter, until ctx ends.
func (g *Gateway) sweepStalls(ctx context.Context) {
	t := time.NewTicker(max(g.cfg.StallAfter/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, c := range g.connections() {
			c.repairStalls(now)
		}
		g.heads.prune(now.Add(-3 * g.cfg.StallAfter))
	}
}

// repairStalls starts a history read for each conversation the device has
// stayed behind a head in for StallAfter: a read up to the head (convState
// target), as for a gap.
func (c *conn) repairStalls(now time.Time) {
	after := c.g.cfg.StallAfter
	var stalled []string
	c.mu.Lock()
	if c.placing {
		c.mu.Unlock()
		return
	}
	for conv, cs := range c.convs {
		if cs.unplaced || cs.left {
			continue
		}
		head, ok := c.g.heads.get(conv)
		delivered := cs.reorder.Delivered()
		if !ok || (cs.epochKnown && head.epoch != cs.epoch) || delivered >= head.seq || cs.target >= head.seq {
			// not behind, a read up to it runs, or a head of another epoch
			// (heads compare within an epoch only; a newer epoch's entries
			// reset the conversation when they come)
			cs.behind = headSeen{}
			continue
		}
		if cs.behind.seq == 0 || delivered >= cs.behind.seq {
			// Behind a newer head than the one watched (or none was):
			// the device moved, so the clock starts at this head.
			cs.behind = head
		}
		if now.Sub(cs.behind.at) < after {
			continue
		}
		c.g.metrics.stalls.Inc()
		c.log.Info("delivery stalled: reading history up to the conversation's head", "conversation", conv,
			"delivered", delivered, "behind", cs.behind.seq, "since", cs.behind.at, "head", head.seq)
		cs.target = max(cs.target, head.seq)
		cs.behind = headSeen{}
		if !cs.filling { // a running fill reads up to the new target too
			cs.filling = true
			stalled = append(stalled, conv)
		}
	}
	c.mu.Unlock()
	for _, conv := range stalled {
		go c.fill(conv, false, nil)
	}
}
