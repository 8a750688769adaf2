package sequencer

import (
	"fmt"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Checker verifies invariants I1–I4 over a sequenced log (and that read
// receipts of a user only advance), fed record by
// record in the order of its partitions. The sequencer's tests and `imctl
// tail` use it; the load generator checks what devices receive and the
// audit tool what ClickHouse holds, each with checks of its own.
type Checker struct {
	convs      map[string]*convCheck
	violations []string
	entries    int
}

type convCheck struct {
	epoch   uint64
	last    uint64
	members map[string]bool
	created bool
	seqOf   map[string]uint64 // sender 0x00 client_msg_id -> seq
	// rejected sends have no place in their device's order: a later resend
	// of one is a new send and may follow its successors.
	rejected map[string]bool
	devices  map[device]*deviceCheck
	reads    map[string]uint64 // user -> read_seq of its last receipt
}

type deviceCheck struct {
	maxClientSeq uint64
	gapsDeclared []uint64 // client_seqs sequenced with predecessor_missing
}

// NewChecker returns an empty checker.
func NewChecker() *Checker { return &Checker{convs: map[string]*convCheck{}} }

func (c *Checker) fail(format string, args ...any) {
	if len(c.violations) < 50 {
		c.violations = append(c.violations, fmt.Sprintf(format, args...))
	}
}

// Entries is the number of sequenced entries (seq > 0) seen.
func (c *Checker) Entries() int { return c.entries }

// LastSeq is the last seq seen in a conversation.
func (c *Checker) LastSeq(conversation string) uint64 {
	if cc := c.convs[conversation]; cc != nil {
		return cc.last
	}
	return 0
}

// SeqOf is the seq a sender's client_msg_id got (0 if none).
func (c *Checker) SeqOf(conversation, sender, clientMsgID string) uint64 {
	if cc := c.convs[conversation]; cc != nil {
		return cc.seqOf[sender+sep+clientMsgID]
	}
	return 0
}

// Err describes the violations found so far (nil if none).
func (c *Checker) Err() error {
	if len(c.violations) == 0 {
		return nil
	}
	return fmt.Errorf("%d invariant violations, first: %v", len(c.violations), c.violations)
}

// Add checks one record of the log.
func (c *Checker) Add(r *imv1.SequencedRecord) {
	cc := c.convs[r.ConversationId]
	switch {
	case cc == nil || r.Seq == 0 || r.Epoch == cc.epoch:
	case cc.last == 0: // notices before the first seq carry no epoch yet
		cc.epoch = r.Epoch
	default:
		if r.Epoch < cc.epoch || r.Seq != 1 {
			c.fail("%s: seq %d of epoch %d follows epoch %d (a new epoch starts at seq 1 and is larger)", r.ConversationId, r.Seq, r.Epoch, cc.epoch)
		}
		cc = nil // a stream rebuilt from nothing: checked afresh
	}
	if cc == nil {
		cc = &convCheck{epoch: r.Epoch, members: map[string]bool{}, seqOf: map[string]uint64{}, rejected: map[string]bool{}, devices: map[device]*deviceCheck{},
			reads: map[string]uint64{}}
		c.convs[r.ConversationId] = cc
	}
	key := r.SenderUserId + sep + r.ClientMsgId
	if r.Seq == 0 { // a notice: a duplicate must name the seq the original got
		if r.GetRejection() != nil {
			cc.rejected[key] = true
		}
		if rr := r.GetReadReceipt(); rr != nil { // read positions only advance, never past the last seq
			if rr.ReadSeq <= cc.reads[rr.UserId] || rr.ReadSeq > cc.last || rr.UserId != r.SenderUserId {
				c.fail("%s: receipt of %s at %d after %d (last seq %d)", r.ConversationId, rr.UserId, rr.ReadSeq, cc.reads[rr.UserId], cc.last)
			}
			cc.reads[rr.UserId] = max(cc.reads[rr.UserId], rr.ReadSeq)
		}
		d := r.GetDuplicate()
		switch {
		case d == nil:
		case d.OriginalSeq == 0 && cc.seqOf[key] == 0: // 0: sequenced, seq no longer remembered
			c.fail("%s: duplicate notice for %s/%s, which was never sequenced (I3, I6)", r.ConversationId, r.SenderUserId, r.ClientMsgId)
		case d.OriginalSeq != 0 && cc.seqOf[key] != d.OriginalSeq:
			c.fail("%s: duplicate notice for %s names seq %d, the original got %d", r.ConversationId, r.ClientMsgId, d.OriginalSeq, cc.seqOf[key])
		}
		return
	}
	c.entries++
	// I1: contiguous, each seq once.
	if r.Seq != cc.last+1 {
		c.fail("%s: seq %d follows %d (I1)", r.ConversationId, r.Seq, cc.last)
	}
	if r.Seq > cc.last {
		cc.last = r.Seq
	}
	if r.MsgId != MsgID(r.ConversationId, r.Epoch, r.Seq) {
		c.fail("%s seq %d: msg_id %q is not the derived one", r.ConversationId, r.Seq, r.MsgId)
	}
	// I3: one seq per client_msg_id.
	if prev, ok := cc.seqOf[key]; ok {
		c.fail("%s: %s/%s got seq %d and %d (I3)", r.ConversationId, r.SenderUserId, r.ClientMsgId, prev, r.Seq)
	}
	cc.seqOf[key] = r.Seq
	// I2: a device's sends go out of client_seq order only across a declared gap.
	if r.ClientSeq > 0 {
		dev := device{r.SenderUserId, r.SenderDeviceId}
		dc := cc.devices[dev]
		if dc == nil {
			dc = &deviceCheck{}
			cc.devices[dev] = dc
		}
		if r.ClientSeq < dc.maxClientSeq && !cc.rejected[key] {
			declared := false
			for _, g := range dc.gapsDeclared {
				declared = declared || (g > r.ClientSeq && g <= dc.maxClientSeq)
			}
			if !declared {
				c.fail("%s: %s/%s client_seq %d sequenced after %d with no declared gap (I2)", r.ConversationId, dev.user, dev.device, r.ClientSeq, dc.maxClientSeq)
			}
		}
		if r.PredecessorMissing {
			dc.gapsDeclared = append(dc.gapsDeclared, r.ClientSeq)
		}
		if r.ClientSeq > dc.maxClientSeq {
			dc.maxClientSeq = r.ClientSeq
		}
	}
	// I4: membership changes apply from their seq, messages only from members.
	dm, users, _ := parseConversation(r.ConversationId)
	member := func(u string) bool { return (dm && (u == users[0] || u == users[1])) || cc.members[u] }
	if ev := r.GetMembership(); ev != nil {
		switch ev.Kind {
		case imv1.MembershipEvent_CREATED:
			if cc.created {
				c.fail("%s: created twice, again at seq %d", r.ConversationId, r.Seq)
			}
			cc.created = true
			for _, u := range ev.UserIds {
				cc.members[u] = true
			}
		case imv1.MembershipEvent_JOINED:
			for _, u := range ev.UserIds {
				if member(u) {
					c.fail("%s seq %d: %s joined while a member (I4)", r.ConversationId, r.Seq, u)
				}
				cc.members[u] = true
			}
		case imv1.MembershipEvent_LEFT, imv1.MembershipEvent_KICKED:
			if !member(r.SenderUserId) {
				c.fail("%s seq %d: %s removed someone while not a member (I4)", r.ConversationId, r.Seq, r.SenderUserId)
			}
			for _, u := range ev.UserIds {
				if !member(u) {
					c.fail("%s seq %d: %s removed while not a member (I4)", r.ConversationId, r.Seq, u)
				}
				delete(cc.members, u)
			}
		}
	} else if !member(r.SenderUserId) {
		c.fail("%s seq %d: message from non-member %s (I4)", r.ConversationId, r.Seq, r.SenderUserId)
	}
}
