package fanout

import (
	"sort"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Heads is the last seq routed of every conversation of one partition and
// the dm conversations of each user, so that a RoutingStarted notice can
// list a user's conversations with where each one is: a device already
// there needs no history read when it connects (issue 16).
type Heads struct {
	last map[string]uint64
	// epoch: the epoch of each conversation's stream last is of (absent: 0).
	epoch   map[string]uint64
	dms     map[string][]string // user -> dm conversations
	changed map[string]struct{}
	// complete: tracked since the partition's first record, so every
	// conversation of the partition is known; persisted once (marker).
	complete, markerDue bool
}

// NewHeads returns an empty, incomplete table.
func NewHeads() *Heads {
	return &Heads{last: map[string]uint64{}, epoch: map[string]uint64{}, dms: map[string][]string{}, changed: map[string]struct{}{}}
}

// restore takes one persisted heads entry (user_id empty); false if fm is
// not one.
func (h *Heads) restore(fm *imv1.FanoutMembership) bool {
	switch {
	case fm.UserId != "":
		return false
	case fm.ConversationId == "":
		h.complete = h.complete || fm.HeadsComplete
	default:
		if fm.Epoch > h.epoch[fm.ConversationId] {
			h.epoch[fm.ConversationId] = fm.Epoch
		}
		h.set(fm.ConversationId, fm.HeadSeq)
	}
	return true
}

// StartComplete: the partition is routed from its first record on.
func (h *Heads) StartComplete() {
	if !h.complete {
		h.complete, h.markerDue = true, true
	}
}

// Observe records that conv's entry seq of epoch was routed, and says
// whether the entry is of the conversation's current epoch (false: of an
// older one, obsolete). Replays after a restart change nothing: a head only
// grows within an epoch; an entry of a newer epoch starts the head afresh.
func (h *Heads) Observe(conv string, epoch, seq uint64) bool {
	switch cur := h.epoch[conv]; {
	case epoch < cur:
		return false
	case epoch > cur:
		h.epoch[conv] = epoch
		h.set(conv, 0)
		h.last[conv] = seq
		h.changed[conv] = struct{}{}
	case seq > h.last[conv]:
		h.set(conv, seq)
		h.changed[conv] = struct{}{}
	}
	return true
}

func (h *Heads) set(conv string, seq uint64) {
	if _, known := h.last[conv]; !known {
		if a, b, ok := dmUsers(conv); ok {
			h.dms[a] = append(h.dms[a], conv)
			if b != a {
				h.dms[b] = append(h.dms[b], conv)
			}
		}
	}
	h.last[conv] = max(h.last[conv], seq)
}

// TakeChanges returns the records that persist what changed since the
// last call (written before the batch's offsets are committed, so a
// restore's heads are never behind what was routed before its offset).
func (h *Heads) TakeChanges() []*imv1.FanoutMembership {
	out := make([]*imv1.FanoutMembership, 0, len(h.changed)+1)
	for conv := range h.changed {
		out = append(out, &imv1.FanoutMembership{Version: imv1.Version, ConversationId: conv, HeadSeq: h.last[conv], Epoch: h.epoch[conv]})
	}
	clear(h.changed)
	sort.Slice(out, func(i, j int) bool { return out[i].ConversationId < out[j].ConversationId })
	if h.markerDue {
		out = append(out, &imv1.FanoutMembership{Version: imv1.Version, HeadsComplete: true})
		h.markerDue = false
	}
	return out
}

// key is the record key of a persisted membership or head.
func key(fm *imv1.FanoutMembership) string {
	if fm.UserId == "" {
		return fm.ConversationId + "\x00"
	}
	return fm.ConversationId + "\x00" + fm.UserId
}

// ConversationsOf lists user's conversations of the partition as routed
// so far, and whether the list is complete: every dm with the user and
// every group with a membership period of the user.
func (h *Heads) ConversationsOf(user string, members *Members) ([]*imv1.RoutedConversation, bool) {
	var out []*imv1.RoutedConversation
	for _, conv := range h.dms[user] {
		out = append(out, &imv1.RoutedConversation{ConversationId: conv, LastSeq: h.last[conv], MemberFrom: 1, Epoch: h.epoch[conv]})
	}
	for _, conv := range members.groupsOf(user) {
		p := members.lastPeriod(conv, user)
		if p == nil {
			continue
		}
		last := h.last[conv]
		if p.ToSeq != 0 && p.ToSeq < last {
			last = p.ToSeq
		}
		out = append(out, &imv1.RoutedConversation{ConversationId: conv, LastSeq: last, MemberFrom: p.FromSeq, Epoch: h.epoch[conv]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConversationId < out[j].ConversationId })
	return out, h.complete
}
