package gateway

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/historyapi"
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

// topicPart is a partition of one generation's sequenced topic: during a
// repartition two generations route, each with its own partitions
// (docs/architecture.md, Repartitioning).
type topicPart struct {
	topic string
	p     int32
}

// routing is what the fanouts said about routing to this connection, per
// partition of each sequenced topic; c.mu guards it.
type routing struct {
	partitions map[string]int32 // per sequenced topic, as its first notice says
	from       map[topicPart]int64
	settled    map[topicPart]bool
	// heads: the user's conversations per partition, from notices that
	// list them completely; incomplete: a notice did not.
	heads      map[topicPart][]*imv1.RoutedConversation
	incomplete bool
	wake       chan struct{} // a notice arrived
}

func newRouting() routing {
	return routing{partitions: map[string]int32{}, from: map[topicPart]int64{}, settled: map[topicPart]bool{},
		heads: map[topicPart][]*imv1.RoutedConversation{}, wake: make(chan struct{}, 1)}
}

// expectedLocked is what the connection settles against: the partition
// count of each sequenced topic whose fanouts route (Gateway.routedTopics),
// or, without a view of the generations, of the topics notices named;
// c.mu is held.
func (c *conn) expectedLocked() map[string]int32 {
	if exp := c.g.routedTopics(); exp != nil {
		return exp
	}
	return maps.Clone(c.routing.partitions)
}

// every reports whether set holds every partition of every topic of exp
// (of which there is at least one).
func every[V any](exp map[string]int32, set map[topicPart]V) bool {
	for topic, n := range exp {
		for p := range n {
			if _, ok := set[topicPart{topic, p}]; !ok {
				return false
			}
		}
	}
	return len(exp) > 0
}

// routingStarted records the fanout's notice that a partition of a
// sequenced topic is routed here from an offset on. A later notice of a
// partition (it moved to another fanout, whose presence view may have
// applied this connection only then) settles it again from its own
// offset, or, once resume placed the device from the notices, reads what
// each conversation lacks up to the notice's heads.
func (c *conn) routingStarted(rs *imv1.RoutingStarted) {
	tp, from, partitions := topicPart{rs.SequencedTopic, rs.SequencedPartition}, rs.SequencedOffset, rs.SequencedPartitions
	if tp.topic == "" { // a fanout from before generations
		tp.topic = c.g.cfg.Topics.Sequenced
	}
	c.mu.Lock()
	r := &c.routing
	if r.partitions[tp.topic] == 0 {
		r.partitions[tp.topic] = partitions
	}
	if partitions == r.partitions[tp.topic] && tp.p >= 0 && tp.p < partitions {
		if prev, noticed := r.from[tp]; !noticed || from > prev {
			r.from[tp] = from
		}
		delete(r.settled, tp)
		if rs.ConversationsComplete && !c.headsMode {
			r.heads[tp] = rs.Conversations
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
		case time.Since(start) >= noticeWait && done:
			// Still waiting can only be for a topic no longer routed (a
			// retired generation's last notices).
			return
		case waiting:
			poll = time.After(wait)
			wait = min(2*wait, time.Second)
		case time.Since(start) >= noticeWait && rounds >= settleRounds:
			return
		default:
			wait = 50 * time.Millisecond
		}
	}
}

// settleNoticed settles the noticed partitions history has stored far
// enough: all at once with one listing of the user's conversations, once
// every partition of every routing generation has its notice and history
// is far enough on each (a reconnect storm must not multiply the
// listings), or, when late, those that are ready. waiting: notices wait
// for history; done: every partition is settled.
func (c *conn) settleNoticed(late bool) (waiting, done bool, err error) {
	c.mu.Lock()
	exp := c.expectedLocked()
	counts := maps.Clone(c.routing.partitions)
	pending := maps.Clone(c.routing.from)
	settled := maps.Clone(c.routing.settled)
	c.mu.Unlock()
	if len(pending) == 0 {
		return false, every(exp, settled), nil
	}
	all := maps.Clone(settled)
	for tp := range pending {
		all[tp] = true
	}
	if !late && !every(exp, all) {
		return false, false, nil // the other notices are on their way
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := c.g.progress.read(ctx)
	if err != nil {
		return true, false, err
	}
	ready := map[topicPart]bool{}
	var behind error // history does not (yet) answer for a noticed topic
	for tp, from := range pending {
		s, ok := stored[tp.topic]
		switch {
		case !ok:
			behind = fmt.Errorf("history's progress has no topic %s", tp.topic)
		case len(s) != int(counts[tp.topic]):
			behind = fmt.Errorf("history's progress has %d partitions of %s, the fanout's notice %d", len(s), tp.topic, counts[tp.topic])
		case s[tp.p] >= from:
			ready[tp] = true
		}
	}
	if len(ready) == 0 || (!late && len(ready) < len(pending)) {
		return true, false, behind
	}
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	if err != nil {
		return true, false, err
	}
	c.mu.Lock()
	for tp := range ready {
		if c.routing.from[tp] == pending[tp] { // not noticed again meanwhile
			delete(c.routing.from, tp)
			c.routing.settled[tp] = true
		}
	}
	done = every(c.expectedLocked(), c.routing.settled)
	left := len(c.routing.from)
	c.mu.Unlock()
	c.g.metrics.settledPartitions.Add(float64(len(ready)))
	for _, conv := range convs {
		for tp := range ready {
			if partitionOf(conv, counts[tp.topic]) == tp.p {
				c.settleConversation(conv)
				break
			}
		}
	}
	return left > 0, done, nil
}

// settleOnce is the timed pass: every conversation of the user that has
// had no live entry, except those settled on their partition of every
// routing generation by a notice.
func (c *conn) settleOnce() {
	c.mu.Lock()
	exp, settled := c.expectedLocked(), maps.Clone(c.routing.settled)
	c.mu.Unlock()
	if every(exp, settled) {
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
		if len(exp) > 0 && settledEverywhere(conv, exp, settled) {
			continue
		}
		c.settleConversation(conv)
	}
}

// settledEverywhere: conv's partition of every topic of exp is settled.
func settledEverywhere(conv string, exp map[string]int32, settled map[topicPart]bool) bool {
	for topic, n := range exp {
		if !settled[topicPart{topic, partitionOf(conv, n)}] {
			return false
		}
	}
	return true
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
	legacy  string     // generation 1's sequenced topic: a history from before generations answers for it
	mu      sync.Mutex // held over the request: the others wait and reuse it
	stored  map[string][]int64
	err     error
	at      time.Time
}

// read is, per sequenced topic history stores, the offset per partition
// before which it has stored every record.
func (p *progressReader) read(ctx context.Context) (map[string][]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) >= progressTTL {
		var prog historyapi.Progress
		prog, p.err = p.history.Progress(ctx)
		p.stored = map[string][]int64{}
		for _, t := range prog.Topics {
			p.stored[t.Topic] = t.StoredBefore
		}
		if len(prog.Topics) == 0 && prog.StoredBefore != nil {
			p.stored[p.legacy] = prog.StoredBefore
		}
		p.at = time.Now()
	}
	return p.stored, p.err
}

// partitionOf is conv's partition of a sequenced topic of n partitions.
func partitionOf(conv string, n int32) int32 {
	return int32(kafkawire.PartitionFor([]byte(conv), int(n)))
}
