package fanout

import (
	"sort"
	"strings"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Members is the membership of the conversations of one partition, as of
// the last entry applied. Feed it every entry of a conversation in seq order.
type Members struct {
	groups map[string]map[string]struct{}
}

// NewMembers returns an empty table.
func NewMembers() *Members { return &Members{groups: map[string]map[string]struct{}{}} }

// Recipients applies entry r and returns the users who receive it, sorted:
//   - a message goes to the members at its seq;
//   - a membership event goes to the members before it and after it, so a
//     joiner sees its own join (receives from k) and a leaver or kicked user
//     sees its removal and nothing after (I4).
//
// Direct conversations (dm:<a>:<b>) always go to both users. Notices
// (seq 0) go to their sender only.
func (m *Members) Recipients(r *imv1.SequencedRecord) []string {
	if r.Seq == 0 {
		return []string{r.SenderUserId}
	}
	if a, b, ok := dmUsers(r.ConversationId); ok {
		return []string{a, b}
	}
	g := m.groups[r.ConversationId]
	ev := r.GetMembership()
	if ev == nil {
		return sortedKeys(g, nil)
	}
	if g == nil {
		g = map[string]struct{}{}
		m.groups[r.ConversationId] = g
	}
	switch ev.Kind {
	case imv1.MembershipEvent_CREATED, imv1.MembershipEvent_JOINED:
		for _, u := range ev.UserIds {
			g[u] = struct{}{}
		}
		return sortedKeys(g, nil)
	case imv1.MembershipEvent_LEFT, imv1.MembershipEvent_KICKED:
		out := sortedKeys(g, nil)
		for _, u := range ev.UserIds {
			delete(g, u)
		}
		return out
	}
	return sortedKeys(g, nil)
}

// IsMember says whether user is a member of conversation now.
func (m *Members) IsMember(conversation, user string) bool {
	if a, b, ok := dmUsers(conversation); ok {
		return user == a || user == b
	}
	_, ok := m.groups[conversation][user]
	return ok
}

func dmUsers(conv string) (a, b string, ok bool) {
	rest, found := strings.CutPrefix(conv, "dm:")
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, ":")
}

func sortedKeys(set map[string]struct{}, out []string) []string {
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
