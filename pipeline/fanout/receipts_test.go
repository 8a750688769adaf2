package fanout

import (
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func receipt(conv, user string, seq uint64) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, SenderUserId: user, SenderDeviceId: "phone",
		Body: &imv1.SequencedRecord_ReadReceipt{ReadReceipt: &imv1.ReadReceipt{UserId: user, ReadSeq: seq}}}
}

// TestReceiptRecipients: a dm's receipt goes to both users; a group's to
// every current member up to the bound, past it to the reader only.
func TestReceiptRecipients(t *testing.T) {
	m := NewMembers()
	m.Recipients(entry("g:small", 1, "ann", ev(imv1.MembershipEvent_CREATED, "ann", "bob", "cat")))
	m.Recipients(entry("g:small", 2, "cat", ev(imv1.MembershipEvent_LEFT, "cat")))
	m.Recipients(entry("g:small", 3, "ann", ev(imv1.MembershipEvent_JOINED, "dan")))
	m.Recipients(entry("g:big", 1, "ann", ev(imv1.MembershipEvent_CREATED, "ann", "bob", "cat", "dan")))
	for _, c := range []struct {
		r    *imv1.SequencedRecord
		max  int
		want string
	}{
		{receipt("dm:alice:bob", "bob", 3), 3, "[alice bob]"},
		{receipt("dm:alice:bob", "bob", 3), 0, "[alice bob]"},
		{receipt("g:small", "bob", 3), 3, "[ann bob dan]"}, // cat left
		{receipt("g:small", "bob", 3), 100, "[ann bob dan]"},
		{receipt("g:small", "bob", 3), 2, "[bob]"},
		{receipt("g:small", "cat", 1), 3, "[ann bob cat dan]"}, // a leaver's mark from before its leave
		{receipt("g:big", "bob", 1), 4, "[ann bob cat dan]"},
		{receipt("g:big", "bob", 1), 3, "[bob]"},
		{receipt("g:big", "bob", 1), 0, "[bob]"},
		{receipt("g:unknown", "bob", 1), 3, "[bob]"},
	} {
		if got := fmt.Sprint(m.ReceiptRecipients(c.r, c.max)); got != c.want {
			t.Errorf("%s by %s, at most %d: %s, want %s", c.r.ConversationId, c.r.SenderUserId, c.max, got, c.want)
		}
	}
	if ch := m.TakeChanges(); len(ch) != 8 {
		t.Fatalf("%d membership changes: receipts must change none", len(ch))
	}
}
