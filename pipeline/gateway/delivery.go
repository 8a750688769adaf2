package gateway

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// historyPage is how many entries one gap fill asks history for.
const historyPage = 500

// deliverNotice takes a notice (seq 0) routed to this device: a read
// receipt (the fanout chose its recipients), or a rejection or a
// duplicate's answer, for the sending device only.
func (c *conn) deliverNotice(r *imv1.SequencedRecord) {
	if f := ReceiptFrame(r); f != nil {
		c.send(f)
		return
	}
	if r.SenderDeviceId != c.device || r.SenderUserId != c.user {
		return
	}
	c.g.admit.landed(time.Now())
	c.mu.Lock()
	if d := r.GetDuplicate(); d != nil {
		// A repeat is answered once, by its own `accepted` (with the
		// original seq if it is not out yet); the original entry reaches
		// the device in the stream like any other.
		if _, ok := c.unanswered[r.ClientMsgId]; ok {
			c.unanswered[r.ClientMsgId] = d.OriginalSeq
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if f := rejectionFrame(r); f != nil {
		c.send(f)
	}
}

// offer feeds live entries of a conversation to its reorder buffer, then
// sends what became deliverable. A conversation seen for the first time
// starts from 0: history fills in what the device may see of it.
func (c *conn) offer(conv string, entries []Entry) {
	c.offerEntries(conv, entries, false, 0, false, 0)
}

// offerPage feeds a history page; it also skips what history is complete
// for but did not return (not visible to this user): the seqs before each
// returned entry and, when the page was not full, those after the last one
// up to complete.
// false: the page was dropped, being of another epoch than the device
// holds (it was reset; the caller reads again from where it now is).
func (c *conn) offerPage(conv string, epoch uint64, page []MsgFrame, complete uint64, pageFull bool) bool {
	entries := make([]Entry, len(page))
	for i, f := range page {
		entries[i] = Entry{Seq: f.Seq, Epoch: f.Epoch, Payload: encode(f), Sender: deviceKey{f.SenderUserID, f.SenderDeviceID}, ClientMsgID: f.ClientMsgID, Membership: f.Event}
	}
	return c.offerEntries(conv, entries, true, complete, pageFull, epoch)
}

// offerEntries: live entries, or a history page of pageEpoch.
func (c *conn) offerEntries(conv string, entries []Entry, fromHistory bool, complete uint64, pageFull bool, pageEpoch uint64) bool {
	c.mu.Lock()
	cs := c.convs[conv]
	if cs == nil {
		cs = &convState{reorder: NewReorder(0, 0), unplaced: c.placing}
		c.convs[conv] = cs
	}
	cs.live = cs.live || (!fromHistory && len(entries) > 0)
	if cs.unplaced {
		cs.keepEarly(entries)
		c.mu.Unlock()
		return true
	}
	var ready []Entry
	overflow := false
	now := time.Now()
	if fromHistory {
		known, was := cs.epochKnown, cs.epoch
		if !c.epochLocked(conv, cs, pageEpoch) || (known && pageEpoch != was) {
			// Of an older epoch (read before a reset, or history behind),
			// or another one: the conversation was reset, and the page,
			// read after the old position, is not what the device needs;
			// the fill (the caller) reads again from seq 0, up to what
			// history holds of the new epoch.
			if pageEpoch == cs.epoch {
				cs.target = max(cs.target, complete)
			}
			c.mu.Unlock()
			return false
		}
	}
	for _, e := range entries {
		if !fromHistory {
			was := cs.epoch
			if !c.epochLocked(conv, cs, e.Epoch) {
				continue // of an older epoch: obsolete
			}
			if e.Epoch != was && len(ready) > 0 {
				ready = ready[:0] // reset by this entry: drop what the old epoch had ready
			}
		}
		if fromHistory && e.Seq > 0 && e.Seq-1 <= complete {
			if from := cs.reorder.Delivered() + 1; from < e.Seq {
				c.log.Debug("skipping seqs history does not show this user", "conversation", conv, "from", from, "to", e.Seq-1, "complete", complete, "first", entries[0].Seq, "n", len(entries))
			}
			ready = append(ready, cs.reorder.SkipTo(e.Seq-1)...)
		}
		got, over := cs.reorder.Offer(e, now)
		ready = append(ready, got...)
		overflow = overflow || over
	}
	if fromHistory && !pageFull {
		if from := cs.reorder.Delivered() + 1; from <= complete {
			c.log.Debug("skipping seqs history does not show this user", "conversation", conv, "from", from, "to", complete, "n", len(entries))
		}
		ready = append(ready, cs.reorder.SkipTo(complete)...)
	}
	_, gap := cs.reorder.Gap()
	startFill := (gap || overflow) && !cs.filling
	if startFill {
		cs.filling = true
	}
	// Queued under the lock that released them (send never blocks): a live
	// entry released by another goroutine right after cannot overtake them.
	for _, e := range ready {
		c.sendEntry(e, fromHistory || !hasSeq(entries, e.Seq))
		if m := e.Membership; m != nil && slices.Contains(m.UserIDs, c.user) {
			cs.left = m.Kind == "left" || m.Kind == "kicked"
		}
	}
	c.mu.Unlock()
	c.g.metrics.delivered.Add(float64(len(ready)))
	if startFill {
		go c.fill(conv, false, nil)
	}
	return true
}

// fill reads history after the delivered position until the conversation
// has no gap (catchUp: until history has nothing newer, then says synced).
// It waits GapWait first for a gap, since the live stream usually closes it.
// first, when set, is the first page, already read by a catch-up call.
func (c *conn) fill(conv string, catchUp bool, first *HistoryPage) {
	defer func() {
		c.mu.Lock()
		cs := c.convs[conv]
		_, gap := cs.reorder.Gap()
		again := cs.settleAgain
		cs.settleAgain = false
		more := (gap || again || cs.reorder.Delivered() < cs.target) && !c.closed()
		cs.filling = more
		c.mu.Unlock()
		if more {
			go c.fill(conv, again, nil)
		}
	}()
	if !catchUp && !c.sleep(c.g.cfg.GapWait) {
		return
	}
	backoff := 100 * time.Millisecond
	for !c.closed() {
		c.mu.Lock()
		cs := c.convs[conv]
		gap, hasGap := cs.reorder.Gap()
		after, target := cs.reorder.Delivered(), cs.target
		shared := after < target && cs.memberFrom > 0 && cs.memberFrom <= after+1
		c.mu.Unlock()
		if !hasGap && !catchUp && after >= target {
			return
		}
		var page HistoryPage
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		switch {
		case first != nil: // read after the resume position: at or below after
			page, first = *first, nil
		case shared:
			page, err = c.g.shared.read(ctx, conv, c.user, after, target)
			c.g.metrics.sharedReads.Inc()
			if err != nil { // the reader's error (not_member, a timeout) need not be this user's
				page, err = c.g.cfg.History.Read(ctx, conv, c.user, after, historyPage)
			}
		default:
			page, err = c.g.cfg.History.Read(ctx, conv, c.user, after, historyPage)
		}
		cancel()
		if errors.Is(err, ErrNotMember) {
			c.mu.Lock()
			cs.target = 0 // nothing to catch up: say so once
			c.mu.Unlock()
			c.send(errorPayload(&ProtocolError{Code: CodeNotMember, Message: c.user + " is not a member of " + conv}, false))
			return
		}
		if err != nil {
			c.g.metrics.historyErrors.Inc()
			c.log.Warn("history read failed; retrying", "conversation", conv, "err", err)
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		c.g.metrics.fills.Inc()
		full := len(page.Entries) == historyPage
		if !c.offerPage(conv, page.Epoch, page.Entries, page.CompleteUpTo, full) {
			// Reset, or history has not stored the device's epoch yet:
			// read again from the device's position.
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if catchUp && !full {
			c.mu.Lock()
			up, target := c.convs[conv].reorder.Delivered(), c.convs[conv].target
			c.mu.Unlock()
			// Synced only once the device has what was routed before it
			// connected (target): history may not have stored it yet, and
			// `synced` says the device is caught up.
			if up >= target {
				c.send(encode(syncedFrame{Type: "synced", ConversationID: conv, UpToSeq: up, Complete: up >= page.CompleteUpTo}))
				catchUp = false
				continue
			}
		}
		if len(page.Entries) == 0 && page.CompleteUpTo < max(gap.To, target) {
			// History has not caught up with the live stream yet.
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

func (c *conn) closed() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// sleep waits d unless the connection closes first.
func (c *conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.quit:
		return false
	}
}

// hasSeq says whether entries hold seq: an entry released by an offer of
// others was held back before.
func hasSeq(entries []Entry, seq uint64) bool {
	for _, e := range entries {
		if e.Seq == seq {
			return true
		}
	}
	return false
}
