package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// dialResume connects and says hello with resume values of any form.
func (p *pipeline) dialResume(gw, user, device string, resume map[string]any) *client {
	p.t.Helper()
	c := p.connect(gw, user, device)
	c.sendJSON(map[string]any{"type": "hello", "token": p.token(user, device, time.Hour), "resume": resume})
	c.waitFrame("welcome", func(f frame) bool { return f.Type == "welcome" })
	return c
}

// after returns the frames of conv received after the first reset of it
// (all of them when wantReset is false), and whether a reset came.
func (c *client) convFrames(conv string) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []frame
	for _, f := range c.frames {
		if f.ConversationID == conv && (f.Type == "msg" || f.Type == "reset") {
			out = append(out, f)
		}
	}
	return out
}

func describeFrames(fs []frame) string {
	s := ""
	for _, f := range fs {
		if f.Type == "reset" {
			s += fmt.Sprintf("reset@e%d ", f.Epoch)
		} else {
			s += fmt.Sprintf("%d@e%d ", f.Seq, f.Epoch)
		}
	}
	return s
}

// TestRebuiltStreamResetsDevices: the sequencer's state is lost (it starts
// again on an empty state topic), so a dm and a group restart at seq 1
// under a new epoch. A device resuming at the old epoch is told `reset`
// and gets exactly the new epoch's entries from seq 1; a device connected
// across the rebuild is reset live; a member of the old group who is not
// one of the new gets nothing; history serves the new epoch only.
func TestRebuiltStreamResetsDevices(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("a")
	const dm, group = "dm:alice:bob", "g:epoch"

	alice := p.dial("a", "alice", "phone", nil)
	bobPhone := p.dial("a", "bob", "phone", nil)
	bobWeb := p.dial("a", "bob", "web", nil)
	carol := p.dial("a", "carol", "phone", nil)
	for i := uint64(1); i <= 3; i++ {
		alice.send(dm, fmt.Sprintf("old-%d", i), i, fmt.Sprintf("old %d", i))
	}
	alice.control(group, "create-old", 4, map[string]any{"op": "create_group", "title": "old", "user_ids": []string{"bob", "carol"}})
	alice.send(group, "g-old-2", 5, "old group 2")
	bobPhone.waitSeqs(dm, 3)
	bobWeb.waitSeqs(dm, 3)
	bobWeb.waitSeqs(group, 2)
	carol.waitSeqs(group, 2)
	e1 := bobPhone.convFrames(dm)[0].Epoch
	if e1 == 0 {
		t.Fatalf("entries of a new conversation carry no epoch: %s", describeFrames(bobPhone.convFrames(dm)))
	}
	bobPhone.sendJSON(map[string]any{"type": "ack", "conversation_id": dm, "seq": 3})
	p.waitPosition("bob", "phone", dm, 3)
	bobPhone.ws.Close()
	<-bobPhone.closed

	// The state lost: the sequencer starts again on an empty state topic.
	p.stopSequencer()
	p.seqCfg.Topics.SequencerState += ".rebuilt"
	for _, spec := range kafkawire.CoreSpecs(p.seqCfg.Topics, kafkawire.Layout{Partitions: partitions}) {
		if spec.Name == p.seqCfg.Topics.SequencerState {
			if err := kafkawire.EnsureTopics(stacktest.Admin(t), spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.startSequencer()

	tablet := p.dial("a", "alice", "tablet", nil) // a new device: its client_seqs start at 1
	tablet.send(dm, "new-1", 1, "new 1")
	tablet.send(dm, "new-2", 2, "new 2")
	tablet.control(group, "create-new", 3, map[string]any{"op": "create_group", "title": "new", "user_ids": []string{"bob"}})
	tablet.send(group, "g-new-2", 4, "new group 2")

	// Connected across the rebuild: reset live, then the new epoch from 1.
	want := func(e uint64, seqs ...uint64) string {
		s := fmt.Sprintf("reset@e%d ", e)
		for _, q := range seqs {
			s += fmt.Sprintf("%d@e%d ", q, e)
		}
		return s
	}
	bobWeb.waitFrame("reset of "+dm, func(f frame) bool { return f.Type == "reset" && f.ConversationID == dm })
	bobWeb.waitSeqs(dm, 5)
	bobWeb.waitSeqs(group, 4)
	webDM := bobWeb.convFrames(dm)
	e2 := webDM[len(webDM)-1].Epoch
	if e2 <= e1 {
		t.Fatalf("epoch after the rebuild %d, want more than %d", e2, e1)
	}
	if got := describeFrames(webDM[3:]); got != want(e2, 1, 2) {
		t.Errorf("bob/web across the rebuild, %s: %s, want %s", dm, got, want(e2, 1, 2))
	}
	webGroup := bobWeb.convFrames(group)
	if got, w := describeFrames(webGroup[2:]), want(webGroup[len(webGroup)-1].Epoch, 1, 2); got != w {
		t.Errorf("bob/web across the rebuild, %s: %s, want %s", group, got, w)
	}

	// Resuming at the old epoch's seq 3: reset, then exactly 1..2 of the new.
	p.waitHistory(dm, 2)
	phone := p.dialResume("a", "bob", "phone", map[string]any{dm: map[string]any{"seq": 3, "epoch": e1}})
	phone.waitFrame("synced "+dm, func(f frame) bool { return f.Type == "synced" && f.ConversationID == dm })
	if got := describeFrames(phone.convFrames(dm)); got != want(e2, 1, 2) {
		t.Errorf("bob/phone resuming at seq 3 of epoch %d: %s, want %s", e1, got, want(e2, 1, 2))
	}
	// Its stored position (seq 3 of e1) says the same for a bare hello.
	bare := p.dial("a", "bob", "phone", map[string]uint64{})
	bare.waitFrame("synced "+dm, func(f frame) bool { return f.Type == "synced" && f.ConversationID == dm })
	if got := describeFrames(bare.convFrames(dm)); got != want(e2, 1, 2) && got != fmt.Sprintf("1@e%d 2@e%d ", e2, e2) {
		// The phone's second connection may have acked seq 2 of e2 already
		// (no reset then), never an entry of e1.
		t.Errorf("bob/phone resuming from its stored position: %s, want %s", got, want(e2, 1, 2))
	}

	// carol was a member of the old group only: nothing of the new epoch.
	tablet.send(dm, "new-3", 5, "new 3")
	bobWeb.waitSeqs(dm, 6)
	if got := carol.convFrames(group); len(got) != 2 {
		t.Errorf("carol, a member of the old %s only, got %s", group, describeFrames(got))
	}

	// History serves the new epoch only.
	p.waitHistory(dm, 3)
	h := &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken}
	page, err := h.Read(context.Background(), dm, "bob", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, fmt.Sprintf("%d@e%d", e.Seq, e.Epoch))
	}
	if w := []string{fmt.Sprintf("1@e%d", e2), fmt.Sprintf("2@e%d", e2), fmt.Sprintf("3@e%d", e2)}; page.Epoch != e2 || !slices.Equal(got, w) {
		t.Errorf("history of %s: epoch %d %v, want epoch %d %v", dm, page.Epoch, got, e2, w)
	}
	if _, err := h.Read(context.Background(), group, "carol", 0, 100); err == nil {
		t.Errorf("history let carol, a member of the old %s only, read the new epoch", group)
	}
}
