package gateway_test

import (
	"context"
	"slices"
	"testing"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// TestEditAndRecallInTheStream: issue 12's edits and recalls. Each is an
// entry with its own seq, so every member applies it after the message it
// revises and in the same order; only the sender edits, the sender or the
// group's creator recalls, nothing follows a recall. History reads show
// each message as its revisions left it; ClickHouse keeps every version.
func TestEditAndRecallInTheStream(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("a")
	alice, bob, carol := p.dial("a", "alice", "phone", nil), p.dial("a", "bob", "phone", nil), p.dial("a", "carol", "phone", nil)
	group, dm := "g:rev", "dm:alice:bob"
	edit := func(c *client, conv, cmid string, clientSeq, target uint64, body string) {
		c.sendJSON(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": cmid, "client_seq": clientSeq,
			"revision": map[string]any{"op": "edit", "target_seq": target}, "message": map[string]string{"content_type": "text/plain", "body": body}})
	}
	recall := func(c *client, conv, cmid string, clientSeq, target uint64) {
		c.sendJSON(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": cmid, "client_seq": clientSeq,
			"revision": map[string]any{"op": "recall", "target_seq": target}})
	}
	rejected := func(c *client, cmid, code string) {
		t.Helper()
		f := c.waitFrame("rejected "+cmid, func(f frame) bool { return f.Type == "rejected" && f.ClientMsgID == cmid })
		if f.Code != code {
			t.Errorf("%s: rejected with %s (%s), want %s", cmid, f.Code, f.Message, code)
		}
	}

	alice.control(group, "create", 1, map[string]any{"op": "create_group", "title": "rev", "user_ids": []string{"bob", "carol"}})
	alice.send(group, "m2", 2, "one") // 2
	bob.waitSeqs(group, 2)            // bob's send comes after alice's
	bob.send(group, "m3", 1, "two")   // 3
	alice.waitSeqs(group, 3)
	edit(alice, group, "e4", 3, 2, "one, edited") // 4
	alice.waitSeqs(group, 4)
	edit(bob, group, "x1", 2, 2, "not mine")
	rejected(bob, "x1", "not_allowed")
	recall(bob, group, "x2", 3, 2)
	rejected(bob, "x2", "not_allowed")
	recall(alice, group, "r5", 4, 3) // 5: the creator recalls bob's
	bob.waitSeqs(group, 5)
	edit(bob, group, "x3", 4, 3, "too late")
	rejected(bob, "x3", "invalid")
	alice.send(dm, "d1", 1, "hi") // dm 1
	bob.waitSeqs(dm, 1)
	recall(bob, dm, "x4", 1, 1)
	rejected(bob, "x4", "not_allowed")
	recall(alice, dm, "r2", 2, 1) // dm 2
	bob.waitSeqs(dm, 2)
	alice.waitSeqs(dm, 2)

	for _, c := range []*client{alice, bob, carol} {
		if got := c.got(group); !slices.Equal(got, seqRange(1, 5)) {
			t.Errorf("%s got group seqs %v, want 1..5", c.user, got)
		}
		c.mu.Lock()
		var revs []string
		for _, f := range c.frames {
			if f.Type == "msg" && f.Revision != nil && f.ConversationID == group {
				revs = append(revs, f.Revision.Op)
				if f.Revision.Op == "edit" && f.Revision.TargetSeq != 2 || f.Revision.Op == "recall" && f.Revision.TargetSeq != 3 {
					t.Errorf("%s: revision %+v at seq %d", c.user, f.Revision, f.Seq)
				}
			}
		}
		c.mu.Unlock()
		if !slices.Equal(revs, []string{"edit", "recall"}) {
			t.Errorf("%s got revisions %v, want an edit then a recall", c.user, revs)
		}
	}

	// History shows the messages as they are now.
	p.waitHistory(group, 5)
	h := &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken}
	page, err := h.Read(context.Background(), group, "carol", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	byseq := map[uint64]gateway.MsgFrame{}
	for _, f := range page.Entries {
		byseq[f.Seq] = f
	}
	if e := byseq[2]; !e.Edited || e.Message == nil || e.Message.Body != "one, edited" {
		t.Errorf("seq 2 from history: %+v, want the edited text", e)
	}
	if e := byseq[3]; !e.Recalled || e.Message != nil {
		t.Errorf("seq 3 from history: %+v, want recalled without content", e)
	}
	if e := byseq[4]; e.Revision == nil || e.Revision.Op != "edit" || e.Revision.TargetSeq != 2 || e.Message == nil {
		t.Errorf("seq 4 from history: %+v, want the edit of 2", e)
	}
	if e := byseq[5]; e.Revision == nil || e.Revision.Op != "recall" || e.Revision.TargetSeq != 3 {
		t.Errorf("seq 5 from history: %+v, want the recall of 3", e)
	}
	// The sync frame a client gets carries the same, valid by the schema
	// (the gateway writes what history gives).
	carol.sendJSON(map[string]any{"type": "sync", "conversation_id": group, "after_seq": 2, "limit": 1})
	f := carol.waitFrame("the synced recall", func(f frame) bool { return f.Type == "msg" && f.Seq == 3 && f.Recalled })
	if len(f.Message) > 0 && string(f.Message) != "null" {
		t.Errorf("a recalled message synced with content %s", f.Message)
	}

	// Analysts see every version.
	var body, kind string
	if err := p.clickhouse.QueryRow(context.Background(), "SELECT body, toString(kind) FROM "+p.database+
		".messages WHERE conversation_id = ? AND seq = 3 LIMIT 1", group).Scan(&body, &kind); err != nil {
		t.Fatal(err)
	}
	if body != "two" || kind != "message" {
		t.Errorf("ClickHouse seq 3: %q %s, want the original text", body, kind)
	}
	var target uint64
	if err := p.clickhouse.QueryRow(context.Background(), "SELECT target_seq, toString(kind) FROM "+p.database+
		".messages WHERE conversation_id = ? AND seq = 5 LIMIT 1", group).Scan(&target, &kind); err != nil {
		t.Fatal(err)
	}
	if target != 3 || kind != "recall" {
		t.Errorf("ClickHouse seq 5: target %d kind %s, want the recall of 3", target, kind)
	}
}
