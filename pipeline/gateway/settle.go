package gateway

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
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
	// heads: the user's conversations per partition, from notices that
	// list them completely; incomplete: a notice did not.
	heads      map[int32][]*imv1.RoutedConversation
	incomplete bool
	wake       chan struct{} // a notice arrived
}

func newRouting() routing {
	return routing{from: map[int32]int64{}, settled: map[int32]bool{}, heads: map[int32][]*imv1.RoutedConversation{},
		wake: make(chan struct{}, 1)}
}

// routingStarted records the fanout's notice that a partition of the
// sequenced topic is routed here from an offset on. A later notice of a
// partition (it moved to another fanout, whose presence view may have
// applied this connection only then) settles it again from its own
// offset, or, once resume placed the device from the notices, reads what
// each conversation lacks up to the notice's heads.
func (c *conn) routingStarted(rs *imv1.RoutingStarted) {
	p, from, partitions := rs.SequencedPartition, rs.SequencedOffset, rs.SequencedPartitions
	c.mu.Lock()
	r := &c.routing
	if r.partitions == 0 {
		r.partitions = partitions
	}
	if partitions == r.partitions && p >= 0 && p < partitions {
		if prev, noticed := r.from[p]; !noticed || from > prev {
			r.from[p] = from
		}
		delete(r.settled, p)
		if rs.ConversationsComplete && !c.headsMode {
			r.heads[p] = rs.Conversations
		} else if !rs.ConversationsComplete {
			r.incomplete = true
		}
	}
	heads := c.headsMode && rs.ConversationsComplete
	c.mu.Unlock()
	if heads {
		c.headsNoticed(rs.Conversations)
	}
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
// timed passes. It runs until every partition is settled and notices are
// no longer expected (noticeWait), however long history takes.
func (c *conn) settle() {
	start := time.Now()
	delay := c.g.cfg.SettleDelay
	timed := time.NewTimer(delay)
	defer timed.Stop()
	end := time.NewTimer(noticeWait)
	defer end.Stop()
	rounds := 0
	var poll <-chan time.Time
	wait := 50 * time.Millisecond
	warned := false
	for {
		select {
		case <-c.quit:
			return
		case <-c.routing.wake:
		case <-poll:
		case <-end.C:
		case <-timed.C:
			c.settleOnce()
			if rounds++; rounds < settleRounds {
				delay *= 4
				timed.Reset(delay)
			}
		}
		poll = nil
		waiting, done, err := c.settleNoticed(time.Since(start) >= c.g.cfg.SettleDelay)
		if err != nil {
			c.g.metrics.historyErrors.Inc()
			if !warned { // once: it is retried until history answers
				c.log.Warn("settle: history does not answer; retrying", "err", err)
				warned = true
			}
		}
		switch {
		case waiting:
			poll = time.After(wait)
			wait = min(2*wait, time.Second)
		case time.Since(start) >= noticeWait && (done || rounds >= settleRounds):
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
func (c *conn) settleNoticed(late bool) (waiting, done bool, err error) {
	c.mu.Lock()
	n := c.routing.partitions
	pending := maps.Clone(c.routing.from)
	settled := len(c.routing.settled)
	c.mu.Unlock()
	if len(pending) == 0 {
		return false, n > 0 && settled == int(n), nil
	}
	if !late && len(pending)+settled < int(n) {
		return false, false, nil // the other notices are on their way
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := c.g.progress.read(ctx)
	if err == nil && len(stored) != int(n) {
		err = fmt.Errorf("history's progress has %d partitions, the fanout's notice %d", len(stored), n)
	}
	if err != nil {
		return true, false, err
	}
	ready := map[int32]bool{}
	for p, from := range pending {
		if stored[p] >= from {
			ready[p] = true
		}
	}
	if len(ready) == 0 || (!late && len(ready) < len(pending)) {
		return true, false, nil
	}
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	if err != nil {
		return true, false, err
	}
	c.mu.Lock()
	for p := range ready {
		if c.routing.from[p] == pending[p] { // not noticed again meanwhile
			delete(c.routing.from, p)
			c.routing.settled[p] = true
		}
	}
	settled = len(c.routing.settled)
	left := len(c.routing.from)
	c.mu.Unlock()
	c.g.metrics.settledPartitions.Add(float64(len(ready)))
	for _, conv := range convs {
		if ready[partitionOf(conv, n)] {
			c.settleConversation(conv)
		}
	}
	return left > 0, settled == int(n), nil
}

// settleOnce is the timed pass: every conversation of the user that has
// had no live entry, except on partitions a notice settled.
func (c *conn) settleOnce() {
	c.mu.Lock()
	n, settled := c.routing.partitions, maps.Clone(c.routing.settled)
	c.mu.Unlock()
	if n > 0 && len(settled) == int(n) {
		return // every partition settled exactly
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	cancel()
	if err != nil {
		c.log.Warn("settle pass: listing conversations", "err", err)
		return
	}
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

// progressTTL is how long one answer of history's progress serves every
// connection of the gateway that is settling.
const progressTTL = 100 * time.Millisecond

// progressReader shares history's progress among the connections settling
// at once (a reconnect storm): at most one request per progressTTL.
type progressReader struct {
	history History
	mu      sync.Mutex // held over the request: the others wait and reuse it
	stored  []int64
	err     error
	at      time.Time
}

func (p *progressReader) read(ctx context.Context) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) >= progressTTL {
		p.stored, p.err = p.history.Progress(ctx)
		p.at = time.Now()
	}
	return p.stored, p.err
}

// partitionOf is conv's partition of the sequenced topic (of n).
func partitionOf(conv string, n int32) int32 {
	return int32(kafkawire.PartitionFor([]byte(conv), int(n)))
}
