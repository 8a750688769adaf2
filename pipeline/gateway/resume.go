package gateway

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// headsWait is how long a new connection waits for the fanout's notices of
// every sequenced partition before it resumes the slow way (history lists
// its conversations and positions).
const headsWait = 5 * time.Second

// maxEarly bounds the live entries a conversation keeps before hello has
// placed it; past it they are dropped and read from history instead.
const maxEarly = 1024

// resume places the device in each of its conversations and catches up
// what it lacks. With the fanout's notices of every partition complete
// (RoutingStarted lists the user's conversations and the last seq routed
// in each), a device already at each one needs no history query at all,
// and those behind read history only for what they lack, in reads shared
// with the other members behind in the same place (a reconnect storm).
// Otherwise history lists the conversations and positions, and the
// settle passes close the seam (settle.go).
func (c *conn) resume(sent map[string]uint64) {
	if notices, ok := c.awaitHeads(); ok {
		c.resumeFromHeads(sent, notices)
		return
	}
	c.g.metrics.resumes.WithLabelValues("history").Inc()
	resume, ok := c.resumeWhenHistoryAnswers(sent)
	if !ok {
		c.shuttingDown()
		return
	}
	c.mu.Lock()
	for conv, pos := range resume {
		c.placeLocked(conv, pos).filling = true
	}
	c.placeRestLocked(nil)
	c.mu.Unlock()
	go c.catchUp(resume)
	select { // the notices that came while awaitHeads waited
	case c.routing.wake <- struct{}{}:
	default:
	}
	c.settle()
}

// shuttingDown closes a connection whose resume the gateway's shutdown
// ended (the client reconnects, here or elsewhere).
func (c *conn) shuttingDown() {
	if !c.closed() {
		c.fail(&ProtocolError{Code: CodeUnavailable, Message: "the gateway is shutting down; reconnect"}, websocket.CloseTryAgainLater)
	}
}

// awaitHeads waits for the notices of every partition of every sequenced
// topic whose fanouts route (expectedLocked); false when one does not
// list the user's conversations completely (a fanout that has not
// tracked its partition from the start) or they do not come in time.
func (c *conn) awaitHeads() (map[topicPart][]*imv1.RoutedConversation, bool) {
	deadline := time.NewTimer(headsWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		r := &c.routing
		incomplete := r.incomplete
		var notices map[topicPart][]*imv1.RoutedConversation
		if every(c.expectedLocked(), r.heads) {
			notices = maps.Clone(r.heads) // once, when every notice is in
		}
		c.mu.Unlock()
		switch {
		case incomplete:
			return nil, false
		case notices != nil:
			return notices, true
		}
		select {
		case <-r.wake:
		case <-deadline.C:
			return nil, false
		case <-c.quit:
			return nil, false
		}
	}
}

// resumeFromHeads resumes from the notices: positions are those hello
// sent, else the stored ones (read only if hello left one out).
func (c *conn) resumeFromHeads(sent map[string]uint64, notices map[topicPart][]*imv1.RoutedConversation) {
	c.g.metrics.resumes.WithLabelValues("heads").Inc()
	var stored map[string]uint64
	if !namesAll(sent, notices) {
		var ok bool
		if stored, ok = c.storedPositions(); !ok {
			c.shuttingDown()
			return
		}
	}
	positions := maps.Clone(stored)
	if positions == nil {
		positions = map[string]uint64{}
	}
	maps.Copy(positions, sent)
	// own: read in batched calls (catchUp): conversations hello named that
	// no notice lists (history says why) and those behind where the user
	// was not a member throughout; shared: the others behind.
	own := map[string]uint64{}
	var shared []string
	c.mu.Lock()
	// From the notices as they are now: one that came after awaitHeads
	// (a partition moved) counts too, since headsMode is set only here.
	c.headsMode = true
	routed := map[string]*imv1.RoutedConversation{}
	for _, convs := range c.routing.heads {
		for _, rc := range convs {
			// During a repartition a conversation is in both generations'
			// notices: the new one's imported the old one's heads and
			// routed on, so the later of the two counts.
			if prev := routed[rc.ConversationId]; prev == nil || later(rc, prev) {
				routed[rc.ConversationId] = rc
			}
			if _, ok := positions[rc.ConversationId]; !ok {
				positions[rc.ConversationId] = 0
			}
		}
	}
	clear(c.routing.heads) // later notices are applied as they come (headsNoticed)
	for conv, pos := range positions {
		rc := routed[conv]
		if rc == nil {
			if _, named := sent[conv]; named {
				c.placeLocked(conv, pos).filling = true
				own[conv] = pos
			}
			continue
		}
		if e, ok := c.resumeEpochs[conv]; ok && e != rc.Epoch {
			// The device's position is of another epoch: it starts afresh
			// at seq 0 of the current one.
			if cs := c.convs[conv]; cs != nil && !cs.unplaced {
				c.resetLocked(conv, cs, rc.Epoch, fmt.Sprintf("%s is at epoch %d; the device resumed at epoch %d", conv, rc.Epoch, e))
			} else {
				c.send(encode(resetFrame{Type: "reset", ConversationID: conv, Epoch: rc.Epoch,
					Message: fmt.Sprintf("%s is at epoch %d; the device resumed at epoch %d", conv, rc.Epoch, e)}))
				c.g.metrics.resets.Inc()
				pos = 0
			}
			c.resumeEpochs[conv] = rc.Epoch
		}
		cs := c.placeLocked(conv, pos)
		if !c.epochLocked(conv, cs, rc.Epoch) {
			continue // a notice older than what the device already got live
		}
		c.aimLocked(cs, rc)
		if at := cs.reorder.Delivered(); at < cs.target {
			cs.filling = true
			if cs.memberFrom > 0 {
				shared = append(shared, conv)
			} else {
				own[conv] = at
			}
			continue
		}
		c.send(encode(syncedFrame{Type: "synced", ConversationID: conv, UpToSeq: cs.reorder.Delivered(), Complete: true}))
		if _, gap := cs.reorder.Gap(); gap {
			cs.filling = true
			go c.fill(conv, false, nil)
		}
	}
	c.placeRestLocked(stored)
	c.mu.Unlock()
	for _, conv := range shared {
		go c.fill(conv, true, nil)
	}
	if len(own) > 0 {
		go c.catchUp(own)
	}
}

// later reports whether a is further on than b: a later epoch, or the
// same one at a higher seq.
func later(a, b *imv1.RoutedConversation) bool {
	return a.Epoch > b.Epoch || a.Epoch == b.Epoch && a.LastSeq > b.LastSeq
}

// namesAll says whether hello named every conversation of the notices.
func namesAll(sent map[string]uint64, notices map[topicPart][]*imv1.RoutedConversation) bool {
	for _, convs := range notices {
		for _, rc := range convs {
			if _, ok := sent[rc.ConversationId]; !ok {
				return false
			}
		}
	}
	return true
}

// aimLocked sets what cs must reach from what the fanout routed before it
// routed to this connection; c.mu is held.
func (c *conn) aimLocked(cs *convState, rc *imv1.RoutedConversation) {
	cs.target = max(cs.target, rc.LastSeq)
	if rc.MemberFrom > 0 && rc.MemberFrom <= cs.reorder.Delivered()+1 {
		cs.memberFrom = rc.MemberFrom
	}
}

// headsNoticed takes a notice that comes after resumeFromHeads (the
// partition moved to another fanout): each conversation behind what it
// says is read up to there.
func (c *conn) headsNoticed(convs []*imv1.RoutedConversation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range convs {
		cs := c.convs[rc.ConversationId]
		if cs == nil {
			cs = &convState{reorder: NewReorder(0, 0)}
			c.convs[rc.ConversationId] = cs
		}
		if !cs.unplaced && !c.epochLocked(rc.ConversationId, cs, rc.Epoch) {
			continue
		}
		c.aimLocked(cs, rc)
		if cs.reorder.Delivered() < cs.target && !cs.filling {
			cs.filling = true
			go c.fill(rc.ConversationId, false, nil)
		}
	}
}

// storedPositions reads the device's stored positions, retried while
// history fails; false if the connection closes first.
func (c *conn) storedPositions() (stored map[string]uint64, ok bool) {
	ok = c.untilHistoryAnswers(func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var epochs map[string]uint64
		stored, epochs, err = c.g.cfg.History.Positions(ctx, c.user, c.device)
		if err == nil {
			c.storedEpochs(stored, epochs)
		}
		return err
	})
	return stored, ok
}

// storedEpochs notes the epochs of the stored positions the device
// resumes from: those hello gave no epoch for (a bare seq, or none); c.mu
// is not held. A stored position without an epoch leaves it unknown.
func (c *conn) storedEpochs(stored, epochs map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conv := range stored {
		if _, given := c.resumeEpochs[conv]; given {
			continue
		}
		if e, ok := epochs[conv]; ok {
			c.resumeEpochs[conv] = e
		}
	}
}

// placeLocked starts conv's reorder buffer at pos and offers it the live
// entries that came first; c.mu is held. A conversation placed already is
// left as it is.
func (c *conn) placeLocked(conv string, pos uint64) *convState {
	cs := c.convs[conv]
	if cs == nil {
		cs = &convState{reorder: NewReorder(pos, 0)}
		c.convs[conv] = cs
		c.resumeEpochLocked(cs, conv)
		return cs
	}
	if !cs.unplaced {
		return cs
	}
	cs.unplaced = false
	cs.reorder = NewReorder(pos, 0)
	c.resumeEpochLocked(cs, conv)
	now := time.Now()
	var ready []Entry
	for _, e := range cs.early {
		was := cs.epoch
		if !c.epochLocked(conv, cs, e.Epoch) {
			continue
		}
		if cs.epoch != was {
			ready = ready[:0] // reset by this entry: what was ready is of the old epoch
		}
		got, overflow := cs.reorder.Offer(e, now)
		ready = append(ready, got...)
		if overflow {
			cs.target = max(cs.target, e.Seq)
		}
	}
	cs.early = nil
	for _, e := range ready {
		c.sendEntry(e, true)
	}
	c.g.metrics.delivered.Add(float64(len(ready)))
	return cs
}

// placeRestLocked ends the placing: conversations that only live entries
// named so far (joined after the fanout's notice) start from their stored
// position, or 0, and fill any hole before those entries; c.mu is held.
func (c *conn) placeRestLocked(stored map[string]uint64) {
	c.placing = false
	for conv, cs := range c.convs {
		if !cs.unplaced {
			continue
		}
		c.placeLocked(conv, stored[conv])
		if _, gap := cs.reorder.Gap(); (gap || cs.reorder.Delivered() < cs.target) && !cs.filling {
			cs.filling = true
			go c.fill(conv, false, nil)
		}
	}
}

// keepEarly holds live entries of a conversation not placed yet; c.mu is
// held.
func (cs *convState) keepEarly(entries []Entry) {
	for _, e := range entries {
		if len(cs.early) < maxEarly {
			cs.early = append(cs.early, e)
		} else {
			cs.target = max(cs.target, e.Seq) // read from history instead
		}
	}
}

// sharedReadTTL is how long a shared read's answer serves the members who
// ask for the same page after it came.
const sharedReadTTL = time.Second

// sharedReads lets the members of a conversation who lack the same entries
// read them once: in a reconnect storm a group's members all lack what was
// sent while their gateway was down.
type sharedReads struct {
	history History
	mu      sync.Mutex
	reads   map[sharedKey]*sharedRead
}

// sharedKey: every member who may see all of (after, to] gets the same
// entries of that range.
type sharedKey struct {
	conv      string
	after, to uint64
}

type sharedRead struct {
	done chan struct{}
	page HistoryPage
	err  error
}

// read returns conv's entries in (after, to] and how far history is
// complete (at most to), as user may see them: the caller guarantees that
// user may see every seq of the range.
func (s *sharedReads) read(ctx context.Context, conv, user string, after, to uint64) (HistoryPage, error) {
	k := sharedKey{conv, after, to}
	s.mu.Lock()
	r, ok := s.reads[k]
	if !ok {
		r = &sharedRead{done: make(chan struct{})}
		s.reads[k] = r
	}
	s.mu.Unlock()
	if !ok {
		r.page, r.err = s.history.Read(ctx, conv, user, after, historyPage)
		close(r.done)
		keep := sharedReadTTL
		if r.err != nil {
			keep = 0 // the next member asks again
		}
		time.AfterFunc(keep, func() {
			s.mu.Lock()
			delete(s.reads, k)
			s.mu.Unlock()
		})
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return HistoryPage{}, ctx.Err()
	}
	if r.err != nil {
		return HistoryPage{}, r.err
	}
	out := HistoryPage{Epoch: r.page.Epoch, CompleteUpTo: min(r.page.CompleteUpTo, to)}
	for _, e := range r.page.Entries {
		if e.Seq <= to {
			out.Entries = append(out.Entries, e)
		}
	}
	return out, nil
}
