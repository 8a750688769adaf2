package sequencer

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Restore rebuilds a partition's machine from its state store: the latest
// entry of every key, tombstoned keys left out.
func Restore(opts Options, entries map[string]*imv1.StateEntry) (*Machine, error) {
	m := NewMachine(opts)
	conv := func(id string) (*conversation, error) {
		if _, _, err := parseConversation(id); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return m.conversation(id), nil
	}
	for key, e := range entries {
		var id string
		switch x := e.Entry.(type) {
		case *imv1.StateEntry_Head:
			id = x.Head.ConversationId
		case *imv1.StateEntry_Member:
			id = x.Member.ConversationId
		case *imv1.StateEntry_Recent:
			id = x.Recent.ConversationId
		case *imv1.StateEntry_Cursor:
			id = x.Cursor.ConversationId
		case *imv1.StateEntry_Held:
			id = x.Held.GetRecord().GetConversationId()
		case *imv1.StateEntry_Read:
			id = x.Read.ConversationId
		case *imv1.StateEntry_Marker:
			continue
		default:
			return nil, fmt.Errorf("restore: key %q: unknown entry %T", key, e.Entry)
		}
		c, err := conv(id)
		if err != nil {
			return nil, err
		}
		switch x := e.Entry.(type) {
		case *imv1.StateEntry_Head:
			c.head = proto.Clone(x.Head).(*imv1.ConversationHead)
		case *imv1.StateEntry_Member:
			c.members[x.Member.UserId] = x.Member.JoinedSeq
		case *imv1.StateEntry_Recent:
			c.recent[x.Recent.SenderUserId+sep+x.Recent.ClientMsgId] = x.Recent
		case *imv1.StateEntry_Cursor:
			c.cursors[device{x.Cursor.UserId, x.Cursor.DeviceId}] = restoreCursor(x.Cursor, m.opts.MaxOpenRangesPerDevice)
		case *imv1.StateEntry_Read:
			c.reads[x.Read.UserId] = x.Read.ReadSeq
		case *imv1.StateEntry_Held:
			r := x.Held.Record
			dev := device{r.SenderUserId, r.SenderDeviceId}
			c.held[dev] = append(c.held[dev], heldSend{rec: r, since: x.Held.HeldSinceMs})
			c.nHeld++
			m.withHeld[c.id] = c
		}
	}
	for _, c := range m.convs {
		for k, rs := range c.recent {
			c.order = append(c.order, k)
			c.bySeq[rs.Seq] = k
		}
		sort.Slice(c.order, func(i, j int) bool { return c.recent[c.order[i]].Seq < c.recent[c.order[j]].Seq })
		for _, hs := range c.held {
			sort.Slice(hs, func(i, j int) bool { return hs[i].rec.ClientSeq < hs[j].rec.ClientSeq })
		}
	}
	return m, nil
}
