package gateway

import (
	"context"
	"maps"
	"time"

	"github.com/seqchat/seqchat/pipeline/kafkawire"
)

// settleRounds: the timed settle pass runs SettleDelay after hello and
// again (settleRounds-1) times, each after a delay 4 times longer than the
// last, for the partitions no RoutingStarted notice came for (a fanout
// that has not seen the device yet, or one too old to send notices).
const settleRounds = 2

// noticeWait is how long after hello notices are still waited for: the
// fanout sends them for connections up to 30 s old (its connectWindow).
const noticeWait = 40 * time.Second

// routing is what the fanout said about routing to this connection, per
// sequenced partition; c.mu guards it.
type routing struct {
	partitions int32           // of the sequenced topic; 0 until a notice says
	from       map[int32]int64 // noticed, not settled yet: partition -> offset
	settled    map[int32]bool
	wake       chan struct{} // a notice arrived
}

func newRouting() routing {
	return routing{from: map[int32]int64{}, settled: map[int32]bool{}, wake: make(chan struct{}, 1)}
}

// routingStarted records the fanout's notice that partition p of the
// sequenced topic (of partitions) is routed here from offset from on. The
// first notice of a partition counts: a later one (the partition moved to
// another fanout) says the same from later on.
func (c *conn) routingStarted(p int32, from int64, partitions int32) {
	c.mu.Lock()
	r := &c.routing
	if r.partitions == 0 {
		r.partitions = partitions
	}
	_, noticed := r.from[p]
	if partitions == r.partitions && p >= 0 && p < partitions && !noticed && !r.settled[p] {
		r.from[p] = from
	}
	c.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// settle delivers what the fanout routed before it knew this device (to
// no device of it): per sequenced partition, once the fanout's notice has
// come and history has stored the partition up to the notice's offset, one
// more history read of each conversation on it that has had no live entry
// (everything from the offset on comes live). Conversations the user
// joined meanwhile are included. Partitions no notice came for get the
// timed passes.
func (c *conn) settle() {
	start := time.Now()
	delay := c.g.cfg.SettleDelay
	timed := time.NewTimer(delay)
	defer timed.Stop()
	rounds := 0
	var poll <-chan time.Time
	wait := 50 * time.Millisecond
	for {
		select {
		case <-c.quit:
			return
		case <-c.routing.wake:
		case <-poll:
		case <-timed.C:
			if rounds < settleRounds {
				c.settleOnce()
				rounds++
				delay *= 4
				if rounds < settleRounds {
					timed.Reset(delay)
				} else {
					timed.Reset(max(time.Until(start.Add(noticeWait)), 0))
				}
			}
		}
		poll = nil
		waiting, done := c.settleNoticed(time.Since(start) >= c.g.cfg.SettleDelay)
		switch {
		case done:
			return
		case waiting:
			poll = time.After(wait)
			wait = min(2*wait, time.Second)
		case rounds >= settleRounds && time.Since(start) >= noticeWait:
			return
		default:
			wait = 50 * time.Millisecond
		}
	}
}

// settleNoticed settles the noticed partitions history has stored far
// enough: all at once with one listing of the user's conversations, once
// every partition has its notice and history is far enough on each (a
// reconnect storm must not multiply the listings), or, when late, those
// that are ready. waiting: notices wait for history; done: every
// partition is settled.
func (c *conn) settleNoticed(late bool) (waiting, done bool) {
	c.mu.Lock()
	n := c.routing.partitions
	pending := maps.Clone(c.routing.from)
	settled := len(c.routing.settled)
	c.mu.Unlock()
	if len(pending) == 0 {
		return false, n > 0 && settled == int(n)
	}
	if !late && len(pending)+settled < int(n) {
		return false, false // the other notices are on their way
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := c.g.cfg.History.Progress(ctx)
	if err == nil && len(stored) != int(n) {
		c.log.Warn("settle: history's progress has another partition count than the fanout's notice", "history", len(stored), "fanout", n)
		return true, false
	}
	if err != nil {
		c.g.metrics.historyErrors.Inc()
		c.log.Warn("settle: reading history's progress", "err", err)
		return true, false
	}
	ready := map[int32]bool{}
	for p, from := range pending {
		if stored[p] >= from {
			ready[p] = true
		}
	}
	if len(ready) == 0 || (!late && len(ready) < len(pending)) {
		return true, false
	}
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	if err != nil {
		c.g.metrics.historyErrors.Inc()
		c.log.Warn("settle: listing conversations", "err", err)
		return true, false
	}
	c.mu.Lock()
	for p := range ready {
		delete(c.routing.from, p)
		c.routing.settled[p] = true
	}
	settled = len(c.routing.settled)
	c.mu.Unlock()
	c.g.metrics.settledPartitions.Add(float64(len(ready)))
	for _, conv := range convs {
		if ready[partitionOf(conv, n)] {
			c.settleConversation(conv)
		}
	}
	return len(pending) > len(ready), settled == int(n)
}

// settleOnce is the timed pass: every conversation of the user that has
// had no live entry, except on partitions a notice settled.
func (c *conn) settleOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	cancel()
	if err != nil {
		c.log.Warn("settle pass: listing conversations", "err", err)
		return
	}
	c.mu.Lock()
	n, settled := c.routing.partitions, maps.Clone(c.routing.settled)
	c.mu.Unlock()
	for _, conv := range convs {
		if n > 0 && settled[partitionOf(conv, n)] {
			continue
		}
		c.settleConversation(conv)
	}
}

// settleConversation reads conv from history after its delivered position
// unless live entries already arrive for it.
func (c *conn) settleConversation(conv string) {
	c.mu.Lock()
	cs := c.convs[conv]
	if cs == nil {
		cs = &convState{reorder: NewReorder(0, 0)}
		c.convs[conv] = cs
	}
	if cs.live {
		c.mu.Unlock()
		c.g.metrics.settleSkips.Inc()
		return
	}
	start := !cs.filling
	cs.filling = true
	cs.settleAgain = !start
	c.mu.Unlock()
	if start {
		go c.fill(conv, true, nil)
	}
}

// partitionOf is conv's partition of the sequenced topic (of n).
func partitionOf(conv string, n int32) int32 {
	return int32(kafkawire.PartitionFor([]byte(conv), int(n)))
}
