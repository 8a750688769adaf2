package fanout

import (
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// maxPeriods bounds the periods kept per user and group: older ones only
// matter to a replay from further back than any restart resumes.
const maxPeriods = 8

// Members holds every user's membership periods in the groups of one
// partition. Recipients of an entry at seq k are the users with a period
// containing k, so replaying entries after a restart gives the same answer
// even when the restored periods are ahead of the replay position.
type Members struct {
	groups map[string]map[string]*imv1.FanoutMembership
	// epoch: the epoch of each group's stream the periods belong to.
	epoch   map[string]uint64
	byUser  map[string][]string // user -> groups with a period of the user
	changed map[*imv1.FanoutMembership]struct{}
}

// NewMembers returns an empty table.
func NewMembers() *Members {
	return &Members{groups: map[string]map[string]*imv1.FanoutMembership{}, epoch: map[string]uint64{}, byUser: map[string][]string{},
		changed: map[*imv1.FanoutMembership]struct{}{}}
}

// RestoreMembers rebuilds the table from the persisted periods. Periods
// of an older epoch than another entry of their group are obsolete (a
// restart between the writes of one reset) and left out.
func RestoreMembers(entries []*imv1.FanoutMembership) *Members {
	m := NewMembers()
	for _, e := range entries {
		m.epoch[e.ConversationId] = max(m.epoch[e.ConversationId], e.Epoch)
	}
	for _, e := range entries {
		fm := m.user(e.ConversationId, e.UserId)
		if e.Epoch == m.epoch[e.ConversationId] {
			fm.Periods = e.Periods
		}
	}
	clear(m.changed)
	return m
}

// observeEpoch says whether a record of conv's epoch is current: false if
// it is of an older epoch than the periods held. A newer epoch (the stream
// rebuilt from nothing, seqs again from 1) drops every period of conv, and
// the emptied entries are persisted with the new epoch.
func (m *Members) observeEpoch(conv string, epoch uint64) bool {
	cur := m.epoch[conv]
	if epoch <= cur {
		return epoch == cur
	}
	m.epoch[conv] = epoch
	for _, fm := range m.groups[conv] {
		fm.Periods, fm.Epoch = nil, epoch
		m.changed[fm] = struct{}{}
	}
	return true
}

func (m *Members) user(conv, user string) *imv1.FanoutMembership {
	g := m.groups[conv]
	if g == nil {
		g = map[string]*imv1.FanoutMembership{}
		m.groups[conv] = g
	}
	fm := g[user]
	if fm == nil {
		fm = &imv1.FanoutMembership{Version: imv1.Version, ConversationId: conv, UserId: user, Epoch: m.epoch[conv]}
		g[user] = fm
		m.byUser[user] = append(m.byUser[user], conv)
	}
	return fm
}

// groupsOf lists the groups in which user has membership periods.
func (m *Members) groupsOf(user string) []string { return m.byUser[user] }

// lastPeriod is user's latest membership period in conv, nil if none.
func (m *Members) lastPeriod(conv, user string) *imv1.MembershipPeriod {
	fm := m.groups[conv][user]
	if fm == nil || len(fm.Periods) == 0 {
		return nil
	}
	return fm.Periods[len(fm.Periods)-1]
}

// Recipients applies entry r and returns the users who receive it, sorted:
// the users whose periods contain its seq. A joiner's period starts at its
// join, so it receives the join; a leaver's ends at its leave, so it
// receives the leave and nothing after (I4). Direct conversations
// (dm:<a>:<b>) go to both users; notices (seq 0) to their sender only. An
// entry of a newer epoch than the periods held starts them afresh; one of
// an older epoch (obsolete) goes to nobody.
func (m *Members) Recipients(r *imv1.SequencedRecord) []string {
	if r.Seq == 0 {
		return []string{r.SenderUserId}
	}
	if a, b, ok := dmUsers(r.ConversationId); ok {
		return []string{a, b}
	}
	if !m.observeEpoch(r.ConversationId, r.Epoch) {
		return nil
	}
	if ev := r.GetMembership(); ev != nil {
		for _, u := range ev.UserIds {
			m.apply(m.user(r.ConversationId, u), ev.Kind, r.Seq)
		}
	}
	var out []string
	for u, fm := range m.groups[r.ConversationId] {
		if contains(fm.Periods, r.Seq) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// ReceiptRecipients returns the users a read receipt r (a notice) goes
// to, sorted: the reader; in a dm the other user too; in a group of at
// most maxMembers current members every member (its cost is bounded: past
// maxMembers the count stops and only the reader gets it).
func (m *Members) ReceiptRecipients(r *imv1.SequencedRecord, maxMembers int) []string {
	reader := r.GetReadReceipt().GetUserId()
	if a, b, ok := dmUsers(r.ConversationId); ok {
		return []string{a, b}
	}
	var out []string
	for u, fm := range m.groups[r.ConversationId] {
		if n := len(fm.Periods); n == 0 || fm.Periods[n-1].ToSeq != 0 {
			continue // not a member now
		}
		if len(out) == maxMembers {
			return []string{reader}
		}
		out = append(out, u)
	}
	if !slices.Contains(out, reader) {
		out = append(out, reader) // a leaver's receipt of a mark made before the leave
	}
	sort.Strings(out)
	return out
}

// apply is idempotent: replaying an event already applied changes nothing.
func (m *Members) apply(fm *imv1.FanoutMembership, kind imv1.MembershipEvent_Kind, seq uint64) {
	switch kind {
	case imv1.MembershipEvent_CREATED, imv1.MembershipEvent_JOINED:
		for _, p := range fm.Periods {
			if p.FromSeq == seq || (p.FromSeq < seq && (p.ToSeq == 0 || p.ToSeq >= seq)) {
				return // already a member at seq
			}
		}
		fm.Periods = append(fm.Periods, &imv1.MembershipPeriod{FromSeq: seq})
		sort.Slice(fm.Periods, func(i, j int) bool { return fm.Periods[i].FromSeq < fm.Periods[j].FromSeq })
		if len(fm.Periods) > maxPeriods {
			fm.Periods = fm.Periods[len(fm.Periods)-maxPeriods:]
		}
	case imv1.MembershipEvent_LEFT, imv1.MembershipEvent_KICKED:
		for _, p := range fm.Periods {
			if p.FromSeq <= seq && (p.ToSeq == 0 || p.ToSeq == seq) {
				if p.ToSeq == seq {
					return
				}
				p.ToSeq = seq
				break
			}
		}
	default:
		return
	}
	m.changed[fm] = struct{}{}
}

// TakeChanges returns copies of the periods changed since the last call.
func (m *Members) TakeChanges() []*imv1.FanoutMembership {
	out := make([]*imv1.FanoutMembership, 0, len(m.changed))
	for fm := range m.changed {
		out = append(out, proto.Clone(fm).(*imv1.FanoutMembership))
	}
	clear(m.changed)
	sort.Slice(out, func(i, j int) bool {
		return out[i].ConversationId+"\x00"+out[i].UserId < out[j].ConversationId+"\x00"+out[j].UserId
	})
	return out
}

// IsMember says whether user is a member of conversation after everything applied.
func (m *Members) IsMember(conversation, user string) bool {
	if a, b, ok := dmUsers(conversation); ok {
		return user == a || user == b
	}
	fm := m.groups[conversation][user]
	return fm != nil && len(fm.Periods) > 0 && fm.Periods[len(fm.Periods)-1].ToSeq == 0
}

func contains(periods []*imv1.MembershipPeriod, seq uint64) bool {
	for _, p := range periods {
		if p.FromSeq <= seq && (p.ToSeq == 0 || seq <= p.ToSeq) {
			return true
		}
	}
	return false
}

func dmUsers(conv string) (a, b string, ok bool) {
	rest, found := strings.CutPrefix(conv, "dm:")
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, ":")
}
