package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestEndToEnd runs the whole pipeline with two gateways and checks, at
// every device: each entry of its conversations once and in seq order (I5),
// the sender's own devices included; membership applying exactly from its
// seq (I4); a reconnect to the other gateway resuming with nothing missing
// and nothing repeated; and bad input answered with the protocol's codes
// while every other connection goes on (I8).
func TestEndToEnd(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("a")
	p.startGateway("b")
	g := "g:" + strings.ReplaceAll(t.Name(), "/", "-")

	alicePhone := p.dial("a", "alice", "phone", nil)
	aliceWeb := p.dial("b", "alice", "web", nil)
	bob := p.dial("a", "bob", "phone", nil)
	carol := p.dial("b", "carol", "phone", nil)
	dave := p.dial("a", "dave", "phone", nil)

	alicePhone.control(g, "create", 1, map[string]any{"op": "create_group", "title": "team", "user_ids": []string{"bob", "carol"}})
	alicePhone.waitFrame("accepted create", func(f frame) bool { return f.Type == "accepted" && f.ClientMsgID == "create" })
	for _, c := range []*client{alicePhone, aliceWeb, bob, carol} {
		c.waitSeqs(g, 1)
	}

	// 20 messages from four devices, concurrently.
	senders := []*client{alicePhone, aliceWeb, bob, carol}
	for i, c := range senders {
		go func() {
			base := uint64(1)
			if c == alicePhone {
				base = 2 // its create_group was client_seq 1
			}
			for k := uint64(0); k < 5; k++ {
				c.send(g, fmt.Sprintf("m-%d-%d", i, k), base+k, fmt.Sprintf("hello %d from %s/%s", k, c.user, c.device))
			}
		}()
	}
	for _, c := range senders {
		c.waitSeqs(g, 21)
		if got := fmt.Sprint(c.got(g)); got != fmt.Sprint(seqRange(1, 21)) {
			t.Fatalf("%s/%s received %s, want 1..21 once each in order", c.user, c.device, got)
		}
	}
	for i := range senders {
		for k := 0; k < 5; k++ {
			cmid := fmt.Sprintf("m-%d-%d", i, k)
			senders[i].waitFrame("accepted "+cmid, func(f frame) bool { return f.Type == "accepted" && f.ClientMsgID == cmid })
		}
	}

	t.Run("non-member is refused and receives nothing", func(t *testing.T) {
		dave.send(g, "d1", 1, "let me in")
		f := dave.expectCode("rejected", "not_member")
		if f.ClientMsgID != "d1" {
			t.Fatalf("rejection names %q, want d1", f.ClientMsgID)
		}
		dave.sendJSON(map[string]any{"type": "sync", "conversation_id": g, "after_seq": 0})
		dave.expectCode("error", "not_member")
		if got := dave.got(g); len(got) != 0 {
			t.Fatalf("dave received %v of a group he is not in", got)
		}
	})

	t.Run("membership applies from its seq", func(t *testing.T) {
		bob.control(g, "bob-leaves", 6, map[string]any{"op": "leave"}) // seq 22
		carol.waitSeqs(g, 22)
		dave.control(g, "dave-joins", 2, map[string]any{"op": "join", "user_id": "dave"}) // seq 23
		carol.waitSeqs(g, 23)
		carol.send(g, "c-after", 6, "after the changes") // seq 24
		for _, c := range []*client{alicePhone, aliceWeb, carol} {
			c.waitSeqs(g, 24)
		}
		dave.waitSeqs(g, 2)
		if got := fmt.Sprint(dave.got(g)); got != "[23 24]" {
			t.Errorf("dave joined at 23 and received %s, want [23 24]", got)
		}
		bob.mu.Lock()
		got := fmt.Sprint(bob.seqs[g])
		bob.mu.Unlock()
		if got != fmt.Sprint(seqRange(1, 22)) {
			t.Errorf("bob left at 22 and received %s, want 1..22", got)
		}
	})

	t.Run("reconnect to the other gateway resumes exactly", func(t *testing.T) {
		before := carol.got(g)
		carol.ws.Close()
		<-carol.closed
		alicePhone.send(g, "while-away-1", 7, "you missed this")
		alicePhone.send(g, "while-away-2", 8, "and this")
		alicePhone.waitSeqs(g, 26)
		again := p.dial("a", "carol", "phone", map[string]uint64{g: before[len(before)-1]})
		again.waitFor("synced", func() bool {
			for _, f := range again.frames {
				if f.Type == "synced" && f.ConversationID == g {
					return true
				}
			}
			return false
		})
		alicePhone.send(g, "live-again", 9, "live")
		again.waitSeqs(g, 3)
		if got := fmt.Sprint(append(before, again.got(g)...)); got != fmt.Sprint(seqRange(1, 27)) {
			t.Fatalf("carol across the reconnect received %s, want 1..27 once each", got)
		}
	})

	t.Run("a device resumes where it acknowledged, on any gateway", func(t *testing.T) {
		got := aliceWeb.got(g)
		acked := got[len(got)-3]
		aliceWeb.sendJSON(map[string]any{"type": "ack", "conversation_id": g, "seq": acked})
		aliceWeb.ws.Close()
		<-aliceWeb.closed
		// The gateway saves the position when the connection closes.
		p.waitPosition("alice", "web", g, acked)
		again := p.dial("a", "alice", "web", nil) // no resume: the stored position counts
		again.waitSeqs(g, 2)
		if first := again.got(g)[0]; first != acked+1 {
			t.Fatalf("resumed at seq %d, want %d (after the acknowledged %d)", first, acked+1, acked)
		}
	})

	t.Run("a group joined while offline is caught up on connect", func(t *testing.T) {
		alicePhone.control(g, "add-erin", 11, map[string]any{"op": "join", "user_id": "erin"})
		f := alicePhone.waitFrame("erin's join", func(f frame) bool { return f.Type == "msg" && f.ClientMsgID == "add-erin" })
		p.waitHistory(g, f.Seq)
		erin := p.dial("b", "erin", "phone", nil)
		erin.waitSeqs(g, 1)
		if got := erin.got(g); got[0] != f.Seq {
			t.Fatalf("erin, added at seq %d, received %v first", f.Seq, got)
		}
	})

	t.Run("a repeated send is answered once", func(t *testing.T) {
		dm := "dm:erin:frank"
		first := p.dial("a", "erin", "tab", nil)
		first.send(dm, "rep-1", 1, "once")
		first.waitSeqs(dm, 1)
		first.ws.Close() // as if the answer had been lost: the device resends
		again := p.dial("b", "erin", "tab", map[string]uint64{dm: 1})
		again.send(dm, "rep-1", 1, "once")
		again.send(dm, "rep-2", 2, "after")
		// The repeat's duplicate notice comes before rep-2's entry (one
		// conversation, one partition, in order): once rep-2 is here,
		// every answer to rep-1 is too.
		again.waitSeqs(dm, 1)
		again.mu.Lock()
		defer again.mu.Unlock()
		answers := 0
		for _, f := range again.frames {
			if f.ClientMsgID == "rep-1" && f.Type != "msg" {
				answers++
				if f.Type != "accepted" {
					t.Errorf("repeat answered %+v, want accepted", f)
				}
			}
		}
		if answers != 1 {
			t.Errorf("the repeat got %d answers, want exactly 1; frames %+v", answers, again.frames)
		}
		if got := fmt.Sprint(again.seqs[dm]); got != "[2]" {
			t.Errorf("after resuming at 1 the device received %s, want [2] (no second seq for the repeat)", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		forged := p.connect("a", "mallory", "x")
		forged.sendJSON(map[string]any{"type": "hello", "token": p.token("alice", "phone", time.Hour) + "x"})
		forged.expectCode("error", "token_invalid")
		forged.waitClosed()

		expired := p.connect("a", "alice", "old")
		expired.sendJSON(map[string]any{"type": "hello", "token": p.token("alice", "old", -time.Minute)})
		expired.expectCode("error", "token_expired")
		expired.waitClosed()

		// A sync of a group that was never created is answered with a
		// code the client can act on, not unavailable for ever: history
		// says unavailable only until its sink has stored what was
		// sequenced before the read (the client retries, as documented).
		dave.mu.Lock()
		seen := len(dave.frames) // dave sends nothing else meanwhile
		dave.mu.Unlock()
		for answered := 0; ; {
			dave.sendJSON(map[string]any{"type": "sync", "conversation_id": "g:never-created", "after_seq": 0})
			var code string
			dave.waitFor("an answer to the sync", func() bool {
				n := 0
				for _, f := range dave.frames[seen:] {
					if f.Type == "error" {
						if n++; n > answered {
							code = f.Code
							return true
						}
					}
				}
				return false
			})
			answered++
			if code == "unknown_conversation" {
				break
			}
			if code != "unavailable" || answered > 50 {
				t.Fatalf("sync of a group never created: %q after %d answers, want unknown_conversation", code, answered)
			}
		}

		// A connection does not outlive its token.
		short := p.connect("a", "alice", "short")
		short.sendJSON(map[string]any{"type": "hello", "token": p.token("alice", "short", 2*time.Second)})
		short.waitFrame("welcome", func(f frame) bool { return f.Type == "welcome" })
		if f := short.expectCode("error", "token_expired"); !f.Fatal {
			t.Errorf("token expiry: %+v, want a fatal error", f)
		}
		short.waitClosed()

		first := p.connect("b", "carol", "x")
		first.sendJSON(map[string]any{"type": "ping", "id": "p"})
		first.expectCode("error", "hello_required")
		first.waitClosed()

		c := p.dial("b", "carol", "tablet", nil)
		c.sendRaw(websocket.TextMessage, []byte("{not json"))
		c.expectCode("error", "bad_frame")
		c.sendJSON(map[string]any{"type": "shout"})
		c.expectCode("error", "unknown_type")
		c.sendRaw(websocket.BinaryMessage, []byte{1, 2, 3})
		c.waitFor("two bad_frame errors", func() bool {
			n := 0
			for _, f := range c.frames {
				if f.Code == "bad_frame" {
					n++
				}
			}
			return n == 2
		})
		c.sendJSON(map[string]any{"type": "ping", "id": "still-here"})
		c.waitFrame("pong", func(f frame) bool { return f.Type == "pong" && f.ID == "still-here" })
		c.sendRaw(websocket.TextMessage, []byte(`{"type":"ping","id":"`+strings.Repeat("x", 5000)+`"}`))
		c.expectCode("error", "frame_too_large")
		c.waitClosed()

		// Everyone else is unaffected: a message still reaches all members.
		alicePhone.send(g, "after-bad-input", 10, "still fine")
		for _, m := range []*client{alicePhone, dave} {
			m.waitFrame("the message after the bad input", func(f frame) bool { return f.Type == "msg" && f.ClientMsgID == "after-bad-input" })
		}
	})
}
