package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

func (c *client) read(conv string, seq uint64) {
	c.sendJSON(map[string]any{"type": "read", "conversation_id": conv, "seq": seq})
}

// receipts are the receipt frames of conv received so far, as "user:seq".
func (c *client) receipts(conv string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []string{}
	for _, f := range c.frames {
		if f.Type == "receipt" && f.ConversationID == conv {
			out = append(out, fmt.Sprintf("%s:%d", f.UserID, f.Seq))
		}
	}
	return out
}

// waitReceipts waits until the device has received want receipts of conv
// and checks they are exactly want.
func (c *client) waitReceipts(conv string, want ...string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%d receipts of %s", len(want), conv), func() bool {
		n := 0
		for _, f := range c.frames {
			if f.Type == "receipt" && f.ConversationID == conv {
				n++
			}
		}
		return n >= len(want)
	})
	if got := c.receipts(conv); !reflect.DeepEqual(got, want) {
		c.t.Fatalf("%s/%s: receipts of %s %v, want %v", c.user, c.device, conv, got, want)
	}
}

// conversations asks for the device's conversation list and returns it.
func (c *client) conversations() []historyapi.ConversationState {
	c.t.Helper()
	n := c.frameCount()
	c.sendJSON(map[string]any{"type": "conversations"})
	var out []historyapi.ConversationState
	c.waitFor("a conversations list", func() bool {
		for _, f := range c.frames[n:] {
			if f.Type == "conversations" {
				out = f.Conversations
				return true
			}
			if f.Type == "error" {
				c.t.Fatalf("conversations: %+v", f)
			}
		}
		return false
	})
	return out
}

// waitList asks for the list until the state of conv in it is want (the
// sink stores entries and receipts a moment after they are sequenced).
func (c *client) waitList(p *pipeline, want historyapi.ConversationState) {
	c.t.Helper()
	var last []historyapi.ConversationState
	stacktest.Eventually(c.t, 30*time.Second, fmt.Sprintf("%s's list showing %+v", c.user, want), func() bool {
		last = c.conversations()
		for _, s := range last {
			if s == want {
				return true
			}
		}
		return false
	})
}

// TestReadReceipts, on the real broker and ClickHouse: a read mark from one
// device reaches the user's other devices and the other user of a dm, never
// the device that marked it; a mark that does not advance the position
// gives nothing, also after a sequencer restart; positions are in
// ClickHouse, and the conversation list counts unread messages of others;
// a small group's members get every receipt and "read by k of n" matches
// the marks; a group over the bound routes receipts to the reader only.
func TestReadReceipts(t *testing.T) {
	p := startPipeline(t)
	p.stopFanout()
	p.fanout.ReceiptsMaxMembers = 3
	p.startFanout()
	p.startGateway("a")
	p.startGateway("b")
	name := strings.ReplaceAll(t.Name(), "/", "-")
	dm := "dm:alice:bob"

	alicePhone := p.dial("a", "alice", "phone", nil)
	aliceWeb := p.dial("b", "alice", "web", nil)
	bobPhone := p.dial("a", "bob", "phone", nil)
	bobTablet := p.dial("b", "bob", "tablet", nil)
	everyone := []*client{alicePhone, aliceWeb, bobPhone, bobTablet}

	for i := uint64(1); i <= 3; i++ {
		alicePhone.send(dm, fmt.Sprintf("a%d", i), i, "hi")
	}
	for _, c := range everyone {
		c.waitSeqs(dm, 3)
	}
	bobPhone.send(dm, "b1", 1, "hello") // seq 4
	for _, c := range everyone {
		c.waitSeqs(dm, 4)
	}
	alicePhone.send(dm, "a4", 4, "and") // seq 5
	for _, c := range everyone {
		c.waitSeqs(dm, 5)
	}
	bobPhone.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 5, ReadSeq: 0, Unread: 4})
	alicePhone.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 5, ReadSeq: 0, Unread: 1})

	bobPhone.read(dm, 3)
	for _, c := range []*client{alicePhone, aliceWeb, bobTablet} {
		c.waitReceipts(dm, "bob:3")
	}
	// Lower and equal marks give nothing: the next receipt anyone gets is 4.
	bobPhone.read(dm, 2)
	bobPhone.read(dm, 3)
	bobPhone.read(dm, 4)
	for _, c := range []*client{alicePhone, aliceWeb, bobTablet} {
		c.waitReceipts(dm, "bob:3", "bob:4")
	}
	bobTablet.read(dm, 99) // clamped to the last seq
	alicePhone.waitReceipts(dm, "bob:3", "bob:4", "bob:5")
	aliceWeb.waitReceipts(dm, "bob:3", "bob:4", "bob:5")
	bobPhone.waitReceipts(dm, "bob:5") // the phone's own marks answered nothing
	bobPhone.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 5, ReadSeq: 5, Unread: 0})
	alicePhone.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 5, ReadSeq: 0, Unread: 1})

	// The sequencer restarts and restores the positions: old marks still
	// give nothing, a new one goes on from there.
	p.stopSequencer()
	p.startSequencer()
	bobPhone.read(dm, 4)
	bobPhone.read(dm, 5)
	alicePhone.send(dm, "a5", 5, "more") // seq 6
	for _, c := range everyone {
		c.waitSeqs(dm, 6)
	}
	bobPhone.read(dm, 6)
	alicePhone.waitReceipts(dm, "bob:3", "bob:4", "bob:5", "bob:6")
	bobTablet.waitReceipts(dm, "bob:3", "bob:4", "bob:6")
	alicePhone.read(dm, 6)
	bobPhone.waitReceipts(dm, "bob:5", "alice:6")
	aliceWeb.waitReceipts(dm, "bob:3", "bob:4", "bob:5", "bob:6", "alice:6")

	store, err := history.NewStore(p.clickhouse, p.database)
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 30*time.Second, "read positions in ClickHouse", func() bool {
		pos, err := store.ReadPositions(context.Background(), dm)
		return err == nil && reflect.DeepEqual(pos, map[string]uint64{"alice": 6, "bob": 6})
	})
	alicePhone.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 6, ReadSeq: 6, Unread: 0})
	bobTablet.waitList(p, historyapi.ConversationState{ConversationID: dm, LastSeq: 6, ReadSeq: 6, Unread: 0})

	t.Run("small group: every member, read by k of n", func(t *testing.T) {
		g := "g:small-" + name
		carol := p.dial("b", "carol", "phone", nil)
		alicePhone.control(g, "create-small", 1, map[string]any{"op": "create_group", "title": "small", "user_ids": []string{"bob", "carol"}})
		alicePhone.send(g, "s2", 2, "one") // seq 2
		alicePhone.send(g, "s3", 3, "two") // seq 3
		for _, c := range []*client{bobPhone, carol} {
			c.waitSeqs(g, 3)
		}
		bobPhone.send(g, "s4", 1, "three") // seq 4
		for _, c := range []*client{alicePhone, bobPhone, carol} {
			c.waitSeqs(g, 4)
		}
		carol.read(g, 3)
		bobPhone.waitReceipts(g, "carol:3")
		bobTablet.read(g, 4)
		alicePhone.waitReceipts(g, "carol:3", "bob:4")
		carol.waitReceipts(g, "bob:4")
		bobPhone.waitReceipts(g, "carol:3", "bob:4")

		want := []historyapi.ReadCount{
			{Seq: 2, SenderUserID: "alice", ReadBy: 2, Members: 2},
			{Seq: 3, SenderUserID: "alice", ReadBy: 2, Members: 2},
			{Seq: 4, SenderUserID: "bob", ReadBy: 0, Members: 2},
		}
		var got historyapi.ReadCounts
		stacktest.Eventually(t, 30*time.Second, "read by k of n", func() bool {
			got = p.readCounts(g, "carol")
			return reflect.DeepEqual(got.Reads, want)
		})
		carol.waitList(p, historyapi.ConversationState{ConversationID: g, LastSeq: 4, ReadSeq: 3, Unread: 1})
		alicePhone.waitList(p, historyapi.ConversationState{ConversationID: g, LastSeq: 4, ReadSeq: 0, Unread: 1})
	})

	t.Run("large group: the reader's devices only", func(t *testing.T) {
		g := "g:large-" + name
		alicePhone.control(g, "create-large", 1, map[string]any{"op": "create_group", "title": "large", "user_ids": []string{"bob", "carol", "dave"}})
		alicePhone.send(g, "l2", 2, "to all") // seq 2
		for _, c := range []*client{alicePhone, bobPhone, bobTablet} {
			c.waitSeqs(g, 2)
		}
		bobPhone.read(g, 2)
		bobTablet.waitReceipts(g, "bob:2")
		// Sequenced after the mark: had alice been sent its receipt, it
		// would have come before this entry.
		alicePhone.send(g, "l3", 3, "after the mark") // seq 3
		alicePhone.waitSeqs(g, 3)
		aliceWeb.waitSeqs(g, 3)
		for _, c := range []*client{alicePhone, aliceWeb, bobPhone} {
			if got := c.receipts(g); len(got) != 0 {
				t.Errorf("%s/%s got receipts %v of a group over the bound", c.user, c.device, got)
			}
		}
	})
}

// readCounts asks the history API for "read by k of n" of conv's messages.
func (p *pipeline) readCounts(conv, user string) historyapi.ReadCounts {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.history+"/v1/conversations/"+conv+"/reads?user="+user, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+serviceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out historyapi.ReadCounts
	if resp.StatusCode != http.StatusOK {
		return out // not stored yet: the caller polls
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatal(err)
	}
	return out
}
