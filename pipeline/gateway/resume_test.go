package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestResumeAtTheHeadReadsNoHistory: issue 16's hello. A device that sends
// the positions it holds and has nothing new is placed from the fanout's
// notices with no history read, and live delivery goes on; members behind
// by the same entries (a reconnect storm) share the reads; a device that
// sends no positions is still caught up from history.
func TestResumeAtTheHeadReadsNoHistory(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("a")
	const members = 8
	group, dm := "g:resume", "dm:u0:u1"
	users := make([]string, members)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	devices := map[string]*client{}
	for _, u := range users {
		devices[u] = p.dial("a", u, "phone", nil)
	}
	u0 := devices["u0"]
	u0.control(group, "create", 1, map[string]any{"op": "create_group", "title": "resume", "user_ids": users[1:]})
	u0.send(group, "m1", 2, "one")
	u0.send(group, "m2", 3, "two")
	u0.send(dm, "d1", 1, "hi")
	devices["u1"].send(dm, "d2", 1, "hello")
	held := map[string]map[string]uint64{}
	for _, u := range users {
		c := devices[u]
		c.waitSeqs(group, 3)
		held[u] = map[string]uint64{group: 3}
		if u == "u0" || u == "u1" {
			c.waitSeqs(dm, 2)
			held[u][dm] = 2
		}
		c.ws.Close()
		<-c.closed
	}

	// Everyone back with the positions held: no read at all.
	before := p.historyReads.Load()
	for _, u := range users {
		devices[u] = p.dial("a", u, "phone", held[u])
	}
	for _, u := range users {
		for conv := range held[u] {
			devices[u].waitFrame("synced "+conv, func(f frame) bool { return f.Type == "synced" && f.ConversationID == conv })
		}
	}
	devices["u1"].send(group, "m3", 1, "live")
	for _, u := range users {
		devices[u].waitSeqs(group, 1)
		if got := devices[u].got(group); !slices.Equal(got, []uint64{4}) {
			t.Errorf("%s after resuming at the head: %v, want [4]", u, got)
		}
	}
	if n := p.historyReads.Load() - before; n != 0 {
		t.Errorf("resuming %d devices at the head read history %d times, want 0", members, n)
	}

	// The others miss seq 5 while away; back, they read it in shared reads.
	for _, u := range users[1:] {
		devices[u].ws.Close()
		<-devices[u].closed
	}
	devices["u0"].send(group, "m4", 4, "while you were away")
	devices["u0"].waitSeqs(group, 2)
	h := &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken}
	stacktest.Eventually(t, 30*time.Second, "history of "+group+" up to 5", func() bool {
		page, err := h.Read(context.Background(), group, "u0", 5, 1)
		return err == nil && page.CompleteUpTo >= 5
	})
	before = p.historyReads.Load()
	for _, u := range users[1:] {
		devices[u] = p.dial("a", u, "phone", map[string]uint64{group: 4})
	}
	for _, u := range users[1:] {
		devices[u].waitFrame("synced", func(f frame) bool { return f.Type == "synced" && f.ConversationID == group })
	}
	devices["u0"].send(group, "m5", 5, "welcome back")
	for _, u := range users[1:] {
		devices[u].waitSeqs(group, 2)
		if got := devices[u].got(group); !slices.Equal(got, []uint64{5, 6}) {
			t.Errorf("%s after missing seq 5: %v, want [5 6]", u, got)
		}
	}
	n := p.historyReads.Load() - before
	t.Logf("%d devices behind by one entry: %d history reads", members-1, n)
	if n >= members-1 {
		t.Errorf("%d devices behind by the same entry made %d history reads: not shared", members-1, n)
	}

	// A new device sends no positions: stored ones (none) and history.
	tablet := p.dial("a", "u2", "tablet", nil)
	tablet.waitSeqs(group, 6)
	if got := tablet.got(group); !slices.Equal(got, seqRange(1, 6)) {
		t.Errorf("a new device of u2: %v, want 1..6", got)
	}

	// Membership changes while away (I4, I8): u7 kicked at 7 gets its kick
	// and nothing after; u8 added at 8 gets from its join; u3 gets all.
	for _, u := range []string{"u3", "u7"} {
		devices[u].ws.Close()
		<-devices[u].closed
	}
	// History stops storing: the devices coming back find it behind what
	// the fanout routed before them, and must not say synced early.
	p.stopSink()
	devices["u0"].control(group, "kick", 6, map[string]any{"op": "kick", "user_id": "u7"})
	devices["u0"].control(group, "add", 7, map[string]any{"op": "join", "user_id": "u8"})
	devices["u0"].send(group, "m6", 8, "after the changes")
	devices["u0"].waitSeqs(group, 6) // 4, 5, 6 before; 7, 8, 9 now
	back := map[string]*client{
		"u3": p.dial("a", "u3", "phone", map[string]uint64{group: 6}),
		"u7": p.dial("a", "u7", "phone", map[string]uint64{group: 6}),
		"u8": p.dial("a", "u8", "phone", nil),
	}
	reads := p.historyReads.Load()
	stacktest.Eventually(t, 30*time.Second, "the returning devices reading the lagging history", func() bool {
		return p.historyReads.Load() > reads
	})
	p.startSink()
	devices["u0"].send(group, "m7", 9, "live after the changes")
	want := map[string][]uint64{"u3": seqRange(7, 10), "u8": seqRange(8, 10)}
	for u, seqs := range want {
		back[u].waitSeqs(group, len(seqs))
		if got := back[u].got(group); !slices.Equal(got, seqs) {
			t.Errorf("%s back after the kick and the join: %v, want %v", u, got, seqs)
		}
	}
	back["u7"].waitFrame("synced", func(f frame) bool { return f.Type == "synced" && f.ConversationID == group })
	if got := back["u7"].got(group); !slices.Equal(got, []uint64{7}) {
		t.Errorf("u7, kicked at 7, back after it: %v, want [7] (its kick and nothing after)", got)
	}
	// Each device's synced comes after every entry the fanout had routed
	// before it came back.
	for u, last := range map[string]uint64{"u3": 9, "u7": 7} {
		c := back[u]
		c.mu.Lock()
		var seen uint64
		for _, f := range c.frames {
			if f.Type == "msg" && f.ConversationID == group {
				seen = f.Seq
			}
			if f.Type == "synced" && f.ConversationID == group {
				if seen < last || f.UpToSeq < last {
					t.Errorf("%s: synced up to %d after seq %d, before %d", u, f.UpToSeq, seen, last)
				}
				break
			}
		}
		c.mu.Unlock()
	}
}
