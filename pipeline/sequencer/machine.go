package sequencer

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Options bound the state a Machine keeps.
type Options struct {
	// HoldWindow is how long a send whose client_seq skips ahead waits for
	// its missing predecessors (I2). Zero means 2s.
	HoldWindow time.Duration
	// RecentPerConversation is how many recent client_msg_ids per
	// conversation are remembered for dedup (I3). Zero means 1000.
	RecentPerConversation int
	// MaxHeldPerConversation bounds held sends per conversation; past it the
	// oldest held device is released early. Zero means 1000.
	MaxHeldPerConversation int
	// MaxOpenRangesPerDevice bounds, per sender device and conversation, the
	// ranges of client_seqs below its cursor that were passed over or
	// rejected (cursor.go says what past it costs). Zero means 64.
	MaxOpenRangesPerDevice int
	// RecallWindow is how long after it was sequenced its sender may
	// recall a message (a group's creator may at any time). Zero means
	// 24h; negative means no limit. Edits have none; both only reach the
	// messages still among the RecentPerConversation recent sends.
	RecallWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.HoldWindow == 0 {
		o.HoldWindow = 2 * time.Second
	}
	if o.RecentPerConversation == 0 {
		o.RecentPerConversation = 1000
	}
	if o.MaxHeldPerConversation == 0 {
		o.MaxHeldPerConversation = 1000
	}
	if o.MaxOpenRangesPerDevice == 0 {
		o.MaxOpenRangesPerDevice = 64
	}
	if o.RecallWindow == 0 {
		o.RecallWindow = 24 * time.Hour
	}
	return o
}

// Rejection codes (schemas/wsprotocol/protocol.md).
const (
	CodeNotMember           = "not_member"
	CodeUnknownConversation = "unknown_conversation"
	CodeAlreadyMember       = "already_member"
	CodeInvalid             = "invalid"
	// CodeNotAllowed: a revision by someone who may not make it.
	CodeNotAllowed = "not_allowed"
	// CodeTooOld: a revision of a message past the recall window or no
	// longer among the conversation's recent sends.
	CodeTooOld = "too_old"
)

type device struct{ user, device string }

type heldSend struct {
	rec   *imv1.RawRecord
	since int64 // ms
}

type conversation struct {
	id      string
	dm      bool
	dmUsers [2]string
	head    *imv1.ConversationHead
	members map[string]uint64 // groups: user -> seq of the event that added them
	recent  map[string]*imv1.RecentSend
	order   []string          // recent keys, oldest first
	bySeq   map[uint64]string // seq -> recent key, for revisions
	cursors map[device]*cursor
	held    map[device][]heldSend // each sorted by client_seq
	nHeld   int
	reads   map[string]uint64 // user -> read position (ReadMark), kept when the user leaves
}

// StateChange is one write to the state store: Entry nil deletes Key.
type StateChange struct {
	Key   string
	Entry *imv1.StateEntry
}

// Machine is the sequencing state of one partition. It is not safe for
// concurrent use: one goroutine owns a partition (single writer per
// conversation). Apply and Expire append output; Take hands it over.
type Machine struct {
	opts     Options
	convs    map[string]*conversation
	withHeld map[string]*conversation
	out      []*imv1.SequencedRecord
	changes  map[string]*imv1.StateEntry
	// ignoredReads counts read marks that moved nothing since the last
	// TakeIgnoredReads (not a member, unknown group, not an advance).
	ignoredReads int
}

// NewMachine returns an empty machine.
func NewMachine(opts Options) *Machine {
	return &Machine{
		opts:     opts.withDefaults(),
		convs:    map[string]*conversation{},
		withHeld: map[string]*conversation{},
		changes:  map[string]*imv1.StateEntry{},
	}
}

// Take returns the output records and state changes since the last Take, in
// the order they must be written, and starts afresh.
func (m *Machine) Take() ([]*imv1.SequencedRecord, []StateChange) {
	out := m.out
	changes := make([]StateChange, 0, len(m.changes))
	for k, e := range m.changes {
		changes = append(changes, StateChange{Key: k, Entry: e})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	m.out, m.changes = nil, map[string]*imv1.StateEntry{}
	return out, changes
}

// Held is the number of sends waiting for a predecessor.
func (m *Machine) Held() int {
	n := 0
	for _, c := range m.withHeld {
		n += c.nHeld
	}
	return n
}

// LastSeq is the last seq given in conversation id (0 if none).
func (m *Machine) LastSeq(id string) uint64 {
	if c := m.convs[id]; c != nil {
		return c.head.LastSeq
	}
	return 0
}

// Epoch is the epoch of conversation id's stream (0 if it has no seq yet,
// or its state predates epochs).
func (m *Machine) Epoch(id string) uint64 {
	if c := m.convs[id]; c != nil {
		return c.head.Epoch
	}
	return 0
}

// CheckRaw reports a raw record the machine cannot process at all. The caller
// dead-letters such records; everything else gets an answer from Apply.
func CheckRaw(r *imv1.RawRecord) error {
	for name, v := range map[string]string{
		"conversation_id": r.ConversationId, "client_msg_id": r.ClientMsgId,
		"sender_user_id": r.SenderUserId, "sender_device_id": r.SenderDeviceId,
	} {
		if v == "" || strings.Contains(v, sep) {
			return fmt.Errorf("%s %q is empty or contains NUL", name, v)
		}
	}
	if _, _, err := parseConversation(r.ConversationId); err != nil {
		return err
	}
	if r.Body == nil {
		return fmt.Errorf("record has neither message nor control")
	}
	if c, ok := r.Body.(*imv1.RawRecord_Control); ok && (c.Control == nil || c.Control.Op == nil) {
		return fmt.Errorf("control without operation")
	}
	return nil
}

// parseConversation splits a conversation id: dm:<a>:<b> (a < b) or g:<id>.
func parseConversation(id string) (dm bool, users [2]string, err error) {
	switch {
	case strings.HasPrefix(id, "dm:"):
		a, b, ok := strings.Cut(strings.TrimPrefix(id, "dm:"), ":")
		if !ok || a == "" || b == "" || a >= b || strings.Contains(b, ":") {
			return false, users, fmt.Errorf("conversation %q: want dm:<a>:<b> with a < b", id)
		}
		return true, [2]string{a, b}, nil
	case strings.HasPrefix(id, "g:") && len(id) > 2:
		return false, users, nil
	}
	return false, users, fmt.Errorf("conversation %q: want dm:<a>:<b> or g:<id>", id)
}

func (m *Machine) conversation(id string) *conversation {
	if c := m.convs[id]; c != nil {
		return c
	}
	dm, users, _ := parseConversation(id) // CheckRaw or restore validated it
	c := &conversation{
		id: id, dm: dm, dmUsers: users,
		head:    &imv1.ConversationHead{ConversationId: id, Created: dm},
		members: map[string]uint64{},
		recent:  map[string]*imv1.RecentSend{},
		bySeq:   map[uint64]string{},
		cursors: map[device]*cursor{},
		held:    map[device][]heldSend{},
		reads:   map[string]uint64{},
	}
	m.convs[id] = c
	return c
}

func (c *conversation) isMember(user string) bool {
	if c.dm {
		return user == c.dmUsers[0] || user == c.dmUsers[1]
	}
	_, ok := c.members[user]
	return ok
}

// Apply processes one raw record (CheckRaw must have passed) at time now.
func (m *Machine) Apply(r *imv1.RawRecord, now time.Time) {
	if mark, ok := r.Body.(*imv1.RawRecord_Read); ok {
		// Before dedup and cursors: a read mark takes no seq, is never
		// remembered, and is idempotent by itself (monotonic).
		m.markRead(r, mark.Read, now)
		return
	}
	c := m.conversation(r.ConversationId)
	dedup := r.SenderUserId + sep + r.ClientMsgId
	if prev := c.recent[dedup]; prev != nil { // I3: same client_msg_id, same seq
		m.notice(r, now).Body = &imv1.SequencedRecord_Duplicate{Duplicate: &imv1.DuplicateNotice{
			OriginalSeq: prev.Seq, OriginalMsgId: prev.MsgId}}
		return
	}
	dev := device{r.SenderUserId, r.SenderDeviceId}
	if r.ClientSeq == 0 { // the sender asked for no per-device order
		m.decide(c, r, now, false)
		return
	}
	for _, h := range c.held[dev] {
		if h.rec.ClientMsgId == r.ClientMsgId {
			return // already waiting; it gets its seq when released
		}
	}
	last := c.lastClientSeq(dev)
	if r.ClientSeq > last+1 { // I2: a predecessor is missing
		m.hold(c, dev, r, now)
		return
	}
	if r.ClientSeq <= last && !c.cursors[dev].isOpen(r.ClientSeq) {
		// I3: this client_seq was sequenced already, and the send has left
		// the recent window (else it was answered above): a repeat, whose
		// seq is no longer remembered.
		m.notice(r, now).Body = &imv1.SequencedRecord_Duplicate{Duplicate: &imv1.DuplicateNotice{}}
		return
	}
	// In order, or late (passed over when its hold window expired, or
	// rejected before): then it cannot move the cursor back, and takes the
	// next seq like any late arrival.
	m.advance(c, dev, r.ClientSeq)
	m.handled(c, dev, r.ClientSeq, m.decide(c, r, now, false))
	m.releaseReady(c, dev, now)
}

// Expire releases the held sends whose hold window has passed: each is
// sequenced with predecessor_missing, and its in-order successors with it.
// Conversations and devices are visited in a fixed order so that the same
// input always gives the same seqs.
func (m *Machine) Expire(now time.Time) {
	deadline := now.Add(-m.opts.HoldWindow).UnixMilli()
	ids := make([]string, 0, len(m.withHeld))
	for id := range m.withHeld {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := m.withHeld[id]
		for {
			dev, since, ok := c.oldestHeld()
			if !ok || since > deadline {
				break
			}
			m.releaseFirst(c, dev, now)
		}
	}
}

// RestartHolds gives every held send a whole hold window from now. A new
// owner of the partition calls it after restoring: the time no owner was
// reading (a rebalance, a restart) must not count against a predecessor
// that may be in the backlog already.
func (m *Machine) RestartHolds(now time.Time) {
	for _, c := range m.withHeld {
		for _, hs := range c.held {
			for i := range hs {
				hs[i].since = now.UnixMilli()
			}
		}
	}
}

// oldestHeld is the device whose first held send has waited longest
// (ties broken by device, for determinism).
func (c *conversation) oldestHeld() (dev device, since int64, ok bool) {
	for d, hs := range c.held {
		if len(hs) == 0 {
			continue
		}
		s := hs[0].since
		if !ok || s < since || (s == since && (d.user < dev.user || d.user == dev.user && d.device < dev.device)) {
			dev, since, ok = d, s, true
		}
	}
	return dev, since, ok
}

func (m *Machine) hold(c *conversation, dev device, r *imv1.RawRecord, now time.Time) {
	if c.nHeld >= m.opts.MaxHeldPerConversation {
		m.releaseOldest(c, now)
	}
	h := heldSend{rec: r, since: now.UnixMilli()}
	hs := c.held[dev]
	i := sort.Search(len(hs), func(i int) bool { return hs[i].rec.ClientSeq > r.ClientSeq })
	hs = append(hs, heldSend{})
	copy(hs[i+1:], hs[i:])
	hs[i] = h
	c.held[dev] = hs
	c.nHeld++
	m.withHeld[c.id] = c
	m.changes[heldKey(c.id, dev, r.ClientMsgId)] = &imv1.StateEntry{Version: imv1.Version,
		Entry: &imv1.StateEntry_Held{Held: &imv1.HeldSend{Record: r, HeldSinceMs: h.since}}}
}

// releaseOldest releases the device whose first held send waited longest.
func (m *Machine) releaseOldest(c *conversation, now time.Time) {
	if dev, _, ok := c.oldestHeld(); ok {
		m.releaseFirst(c, dev, now)
	}
}

// releaseFirst sequences the device's lowest held send although its
// predecessor never came, then every held send that follows it in order.
func (m *Machine) releaseFirst(c *conversation, dev device, now time.Time) {
	h := m.unhold(c, dev)
	m.advance(c, dev, h.rec.ClientSeq) // what it skips is passed over
	m.handled(c, dev, h.rec.ClientSeq, m.decide(c, h.rec, now, true))
	m.releaseReady(c, dev, now)
}

// releaseReady sequences held sends of dev that are next in order.
func (m *Machine) releaseReady(c *conversation, dev device, now time.Time) {
	for {
		hs := c.held[dev]
		if len(hs) == 0 || hs[0].rec.ClientSeq != c.lastClientSeq(dev)+1 {
			return
		}
		h := m.unhold(c, dev)
		m.advance(c, dev, h.rec.ClientSeq)
		m.handled(c, dev, h.rec.ClientSeq, m.decide(c, h.rec, now, false))
	}
}

func (m *Machine) unhold(c *conversation, dev device) heldSend {
	hs := c.held[dev]
	h := hs[0]
	if len(hs) == 1 {
		delete(c.held, dev)
	} else {
		c.held[dev] = hs[1:]
	}
	c.nHeld--
	if c.nHeld == 0 {
		delete(m.withHeld, c.id)
	}
	m.changes[heldKey(c.id, dev, h.rec.ClientMsgId)] = nil
	return h
}

// decide accepts the send (a new seq; true) or rejects it (a notice, no seq; false).
func (m *Machine) decide(c *conversation, r *imv1.RawRecord, now time.Time, predecessorMissing bool) bool {
	reject := func(code, format string, args ...any) {
		m.notice(r, now).Body = &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{Code: code, Message: fmt.Sprintf(format, args...)}}
	}
	sender := r.SenderUserId
	// memberOfExisting rejects a message or revision of a group never
	// created or by a non-member.
	memberOfExisting := func() bool {
		switch {
		case !c.head.Created:
			reject(CodeUnknownConversation, "%s does not exist", c.id)
		case !c.isMember(sender):
			reject(CodeNotMember, "%s is not a member of %s", sender, c.id)
		default:
			return true
		}
		return false
	}
	var entry *imv1.SequencedRecord
	switch body := r.Body.(type) {
	case *imv1.RawRecord_Message:
		if !memberOfExisting() {
			return false
		}
		entry = &imv1.SequencedRecord{Body: &imv1.SequencedRecord_Message{Message: body.Message}}
	case *imv1.RawRecord_Control:
		if c.dm {
			reject(CodeInvalid, "%s is a direct conversation: its members are fixed", c.id)
			return false
		}
		ev, code, why := m.membership(c, sender, body.Control)
		if code != "" {
			reject(code, "%s", why)
			return false
		}
		entry = &imv1.SequencedRecord{Body: &imv1.SequencedRecord_Membership{Membership: ev}}
	case *imv1.RawRecord_Revision:
		if !memberOfExisting() {
			return false
		}
		target, code, why := m.revisable(c, sender, body.Revision, now)
		if code != "" {
			reject(code, "%s", why)
			return false
		}
		entry = &imv1.SequencedRecord{Body: &imv1.SequencedRecord_Revision{Revision: body.Revision}}
		if body.Revision.GetRecall() != nil {
			target.Recalled = true
			m.changes[recentKey(c.id, target.SenderUserId, target.ClientMsgId)] = &imv1.StateEntry{Version: imv1.Version,
				Entry: &imv1.StateEntry_Recent{Recent: target}}
		}
	}
	m.sequence(c, r, entry, now, predecessorMissing)
	return true
}

// revisable checks a revision by actor (a member) and returns the recent
// send it revises.
func (m *Machine) revisable(c *conversation, actor string, rev *imv1.Revision, now time.Time) (*imv1.RecentSend, string, string) {
	seq := rev.GetTargetSeq()
	if rev == nil || rev.Op == nil || (rev.GetRecall() == nil && rev.GetEdit() == nil) {
		return nil, CodeInvalid, "a revision needs an edit or a recall"
	}
	if seq == 0 || seq > c.head.LastSeq {
		return nil, CodeInvalid, fmt.Sprintf("%s has no seq %d", c.id, seq)
	}
	target := c.recent[c.bySeq[seq]]
	switch {
	case target == nil || c.head.LastSeq+1-seq > imv1.RevisionReach:
		return nil, CodeTooOld, fmt.Sprintf("seq %d of %s is older than its last %d sends (and than %d seqs)", seq, c.id, m.opts.RecentPerConversation, imv1.RevisionReach)
	case !target.Revisable:
		return nil, CodeInvalid, fmt.Sprintf("seq %d of %s is not a chat message", seq, c.id)
	case target.Recalled:
		return nil, CodeInvalid, fmt.Sprintf("seq %d of %s was recalled", seq, c.id)
	}
	own := actor == target.SenderUserId
	if rev.GetEdit() != nil {
		if !own {
			return nil, CodeNotAllowed, fmt.Sprintf("only %s, who sent it, may edit seq %d", target.SenderUserId, seq)
		}
		return target, "", ""
	}
	if !c.dm && c.head.Creator != "" && actor == c.head.Creator {
		return target, "", "" // the group's creator moderates: any message, any time
	}
	if !own {
		return nil, CodeNotAllowed, fmt.Sprintf("only %s, who sent it, or the group's creator may recall seq %d", target.SenderUserId, seq)
	}
	if w := m.opts.RecallWindow; w > 0 && now.UnixMilli()-target.SequencedAtMs > w.Milliseconds() {
		return nil, CodeTooOld, fmt.Sprintf("seq %d of %s is older than the recall window (%v)", seq, c.id, w)
	}
	return target, "", ""
}

// membership checks a control operation; on success it returns the event.
// State changes are applied by applyMembership once the seq is known.
func (m *Machine) membership(c *conversation, actor string, ctl *imv1.Control) (*imv1.MembershipEvent, string, string) {
	switch op := ctl.Op.(type) {
	case *imv1.Control_CreateGroup:
		if c.head.Created {
			return nil, CodeAlreadyMember, fmt.Sprintf("%s already exists", c.id)
		}
		users := []string{actor}
		seen := map[string]bool{actor: true}
		for _, u := range op.CreateGroup.GetInitialMembers() {
			if u != "" && !strings.Contains(u, sep) && !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
		return &imv1.MembershipEvent{Kind: imv1.MembershipEvent_CREATED, UserIds: users, Title: op.CreateGroup.GetTitle()}, "", ""
	}
	if !c.head.Created {
		return nil, CodeUnknownConversation, fmt.Sprintf("%s does not exist", c.id)
	}
	switch op := ctl.Op.(type) {
	case *imv1.Control_Join:
		u := op.Join.GetUserId()
		if u == "" || strings.Contains(u, sep) {
			return nil, CodeInvalid, "join needs a user_id"
		}
		// Groups are open: a user may join itself; a member may add anyone.
		if u != actor && !c.isMember(actor) {
			return nil, CodeNotMember, fmt.Sprintf("%s is not a member of %s and cannot add %s", actor, c.id, u)
		}
		if c.isMember(u) {
			return nil, CodeAlreadyMember, fmt.Sprintf("%s is already a member of %s", u, c.id)
		}
		return &imv1.MembershipEvent{Kind: imv1.MembershipEvent_JOINED, UserIds: []string{u}}, "", ""
	case *imv1.Control_Leave:
		if !c.isMember(actor) {
			return nil, CodeNotMember, fmt.Sprintf("%s is not a member of %s", actor, c.id)
		}
		return &imv1.MembershipEvent{Kind: imv1.MembershipEvent_LEFT, UserIds: []string{actor}}, "", ""
	case *imv1.Control_Kick:
		u := op.Kick.GetUserId()
		if !c.isMember(actor) {
			return nil, CodeNotMember, fmt.Sprintf("%s is not a member of %s", actor, c.id)
		}
		if !c.isMember(u) {
			return nil, CodeNotMember, fmt.Sprintf("%s is not a member of %s", u, c.id)
		}
		return &imv1.MembershipEvent{Kind: imv1.MembershipEvent_KICKED, UserIds: []string{u}}, "", ""
	}
	return nil, CodeInvalid, "unknown control operation"
}

func (m *Machine) sequence(c *conversation, r *imv1.RawRecord, e *imv1.SequencedRecord, now time.Time, predecessorMissing bool) {
	seq := c.head.LastSeq + 1
	if seq == 1 && c.head.Epoch == 0 {
		// The conversation's first seq: its stream's epoch starts now. A
		// head restored with seqs and no epoch (state from before epochs)
		// keeps epoch 0; a state rebuilt from nothing gets a new, larger one.
		c.head.Epoch = uint64(now.UnixMilli())
	}
	e.Version = imv1.Version
	e.ConversationId = c.id
	e.Seq = seq
	e.Epoch = c.head.Epoch
	e.MsgId = MsgID(c.id, c.head.Epoch, seq)
	e.ClientMsgId = r.ClientMsgId
	e.SenderUserId = r.SenderUserId
	e.SenderDeviceId = r.SenderDeviceId
	e.ClientSeq = r.ClientSeq
	e.ReceivedAtMs = r.ReceivedAtMs
	e.SequencedAtMs = now.UnixMilli()
	e.Origin = r.Origin
	e.PredecessorMissing = predecessorMissing
	m.out = append(m.out, e)

	c.head.LastSeq = seq
	if ev := e.GetMembership(); ev != nil {
		if ev.Kind == imv1.MembershipEvent_CREATED {
			c.head.Creator = r.SenderUserId
		}
		m.applyMembership(c, ev, seq)
	}
	m.changes[headKey(c.id)] = &imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Head{
		Head: &imv1.ConversationHead{ConversationId: c.id, LastSeq: seq, Created: c.head.Created, Title: c.head.Title, Creator: c.head.Creator,
			Epoch: c.head.Epoch}}}
	m.remember(c, &imv1.RecentSend{ConversationId: c.id, SenderUserId: r.SenderUserId, ClientMsgId: r.ClientMsgId, Seq: seq, MsgId: e.MsgId,
		Revisable: e.GetMessage() != nil, SequencedAtMs: e.SequencedAtMs})
}

func (m *Machine) applyMembership(c *conversation, ev *imv1.MembershipEvent, seq uint64) {
	switch ev.Kind {
	case imv1.MembershipEvent_CREATED:
		c.head.Created, c.head.Title = true, ev.Title
		fallthrough
	case imv1.MembershipEvent_JOINED:
		for _, u := range ev.UserIds {
			c.members[u] = seq
			m.changes[memberKey(c.id, u)] = &imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Member{
				Member: &imv1.Member{ConversationId: c.id, UserId: u, JoinedSeq: seq}}}
		}
	case imv1.MembershipEvent_LEFT, imv1.MembershipEvent_KICKED:
		for _, u := range ev.UserIds {
			delete(c.members, u)
			m.changes[memberKey(c.id, u)] = nil
		}
	}
}

// remember adds a send to the dedup window, forgetting the oldest past the bound.
func (m *Machine) remember(c *conversation, rs *imv1.RecentSend) {
	k := rs.SenderUserId + sep + rs.ClientMsgId
	c.recent[k] = rs
	c.bySeq[rs.Seq] = k
	c.order = append(c.order, k)
	m.changes[recentKey(c.id, rs.SenderUserId, rs.ClientMsgId)] = &imv1.StateEntry{Version: imv1.Version,
		Entry: &imv1.StateEntry_Recent{Recent: rs}}
	for len(c.order) > m.opts.RecentPerConversation {
		old := c.recent[c.order[0]]
		delete(c.recent, c.order[0])
		delete(c.bySeq, old.Seq)
		c.order = c.order[1:]
		m.changes[recentKey(c.id, old.SenderUserId, old.ClientMsgId)] = nil
	}
}

// ReadPosition is how far user has read conversation id (0: never marked).
func (m *Machine) ReadPosition(id, user string) uint64 {
	if c := m.convs[id]; c != nil {
		return c.reads[user]
	}
	return 0
}

// TakeIgnoredReads returns how many read marks moved nothing since the
// last call, and starts afresh.
func (m *Machine) TakeIgnoredReads() int {
	n := m.ignoredReads
	m.ignoredReads = 0
	return n
}

// markRead advances the sender's read position to the mark's seq (clamped
// to the conversation's last seq) and emits one ReadReceipt notice. A mark
// that would not advance it, or from a user who is not a member of an
// existing conversation, is ignored: read positions never move backwards.
// Positions outlive a leave (a rejoiner's marks go on from where it was).
func (m *Machine) markRead(r *imv1.RawRecord, mark *imv1.ReadMark, now time.Time) {
	c := m.convs[r.ConversationId]
	if c == nil || !c.head.Created || !c.isMember(r.SenderUserId) {
		m.ignoredReads++
		return
	}
	seq := min(mark.GetSeq(), c.head.LastSeq)
	if seq <= c.reads[r.SenderUserId] {
		m.ignoredReads++
		return
	}
	c.reads[r.SenderUserId] = seq
	m.changes[readKey(c.id, r.SenderUserId)] = &imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Read{
		Read: &imv1.ReadPosition{ConversationId: c.id, UserId: r.SenderUserId, ReadSeq: seq}}}
	m.notice(r, now).Body = &imv1.SequencedRecord_ReadReceipt{ReadReceipt: &imv1.ReadReceipt{UserId: r.SenderUserId, ReadSeq: seq}}
}

// notice appends an answer to the sender that takes no seq (seq 0); the
// caller sets its body (rejection or duplicate). It carries the
// conversation's epoch (0 before its first seq).
func (m *Machine) notice(r *imv1.RawRecord, now time.Time) *imv1.SequencedRecord {
	n := &imv1.SequencedRecord{
		Version: imv1.Version, ConversationId: r.ConversationId, ClientMsgId: r.ClientMsgId, Epoch: m.Epoch(r.ConversationId),
		SenderUserId: r.SenderUserId, SenderDeviceId: r.SenderDeviceId, ClientSeq: r.ClientSeq,
		ReceivedAtMs: r.ReceivedAtMs, SequencedAtMs: now.UnixMilli(), Origin: r.Origin,
	}
	m.out = append(m.out, n)
	return n
}

var msgIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// MsgID is the globally unique id of entry seq of a conversation's stream
// of the given epoch. It is derived, not random, so a batch replayed after
// an aborted transaction gets the same ids. Epoch 0 (streams from before
// epochs) gives the ids of before epochs; two epochs' seq 5 get different ids.
func MsgID(conversation string, epoch, seq uint64) string {
	h := sha256.New()
	h.Write([]byte(conversation))
	var b [9]byte
	binary.BigEndian.PutUint64(b[1:], seq)
	h.Write(b[:])
	if epoch != 0 {
		// b[0] is 0 above and conversation ids hold no NUL, so the input
		// stays unambiguous.
		var e [9]byte
		e[0] = 'e'
		binary.BigEndian.PutUint64(e[1:], epoch)
		h.Write(e[:])
	}
	return msgIDEncoding.EncodeToString(h.Sum(nil)[:16])
}
