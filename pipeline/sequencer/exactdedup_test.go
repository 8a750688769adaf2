package sequencer

import (
	"fmt"
	"testing"
	"time"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Exact dedup past the recent window (I3): a device's cursor and its open
// client_seqs (passed over or rejected) tell a repeat from a late send.

// stateful runs a machine like a sequencer does: every state change goes to
// a store (through the wire format), every output through the Checker, and
// with restarts the machine is rebuilt from the store before every step.
type stateful struct {
	t        *testing.T
	opts     Options
	m        *Machine
	store    map[string]*imv1.StateEntry
	check    *Checker
	restarts bool
}

func newStateful(t *testing.T, opts Options, restarts bool) *stateful {
	return &stateful{t: t, opts: opts, m: NewMachine(opts), store: map[string]*imv1.StateEntry{}, check: NewChecker(), restarts: restarts}
}

func (s *stateful) restart() {
	s.t.Helper()
	m, err := Restore(s.opts, s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	s.m = m
}

func (s *stateful) take() []outcome {
	s.t.Helper()
	out, changes := s.m.Take()
	for _, c := range changes {
		if c.Entry == nil {
			delete(s.store, c.Key)
		} else {
			s.store[c.Key] = roundTrip(s.t, c.Entry)
		}
	}
	for _, r := range out {
		s.check.Add(r)
		if d := r.GetDuplicate(); d != nil && d.OriginalSeq == 0 && d.OriginalMsgId != "" {
			s.t.Fatalf("duplicate notice without seq names msg_id %q", d.OriginalMsgId)
		}
	}
	if err := s.check.Err(); err != nil {
		s.t.Fatal(err)
	}
	return outcomes(out)
}

func (s *stateful) run(now time.Time, recs ...*imv1.RawRecord) []outcome {
	s.t.Helper()
	if s.restarts {
		s.restart()
	}
	for _, r := range recs {
		if err := CheckRaw(r); err != nil {
			s.t.Fatal(err)
		}
		s.m.Apply(r, now)
	}
	return s.take()
}

func (s *stateful) expire(now time.Time) []outcome {
	s.t.Helper()
	if s.restarts {
		s.restart()
	}
	s.m.Expire(now)
	return s.take()
}

// cursorOf describes a device's cursor as "last open=[a-b ...]", from the
// machine and, to prove the state entry holds exactly the same, from a
// machine restored from the store.
func (s *stateful) cursorOf(conv, user, dev string) string {
	s.t.Helper()
	describe := func(m *Machine) string {
		c := m.convs[conv]
		if c == nil || c.cursors[device{user, dev}] == nil {
			return "none"
		}
		d := c.cursors[device{user, dev}]
		return fmt.Sprintf("%d open=%v", d.last, d.open)
	}
	live := describe(s.m)
	restored, err := Restore(s.opts, s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	if got := describe(restored); got != live {
		s.t.Fatalf("cursor %s/%s in %s: restored %s, live %s", user, dev, conv, got, live)
	}
	return live
}

func fill(conv, user, dev, prefix string, from uint64, n int) []*imv1.RawRecord {
	var rs []*imv1.RawRecord
	for i := 0; i < n; i++ {
		rs = append(rs, msg(conv, user, dev, fmt.Sprintf("%s%d", prefix, i), from+uint64(i)))
	}
	return rs
}

func bothWays(t *testing.T, f func(t *testing.T, restarts bool)) {
	for _, restarts := range []bool{false, true} {
		t.Run(fmt.Sprintf("restarts=%v", restarts), func(t *testing.T) { f(t, restarts) })
	}
}

// (1) A send repeated after more than RecentPerConversation other entries is
// a duplicate: no new seq, cursor unchanged.
func TestRepeatPastWindowIsDuplicate(t *testing.T) {
	bothWays(t, func(t *testing.T, restarts bool) {
		s := newStateful(t, Options{}, restarts) // the default window: 1000
		c := "dm:a:b"
		expect(t, s.run(t0, msg(c, "a", "p", "x1", 1), msg(c, "a", "p", "x2", 2)),
			outcome{1, "msg", "x1", false}, outcome{2, "msg", "x2", false})
		others := fill(c, "b", "w", "b", 1, 1001)
		if got := s.run(t0, others...); len(got) != 1001 || got[1000].seq != 1003 {
			t.Fatalf("filler: %d outcomes, last %v", len(got), got[len(got)-1])
		}
		if _, ok := s.m.convs[c].recent["a"+sep+"x1"]; ok {
			t.Fatal("x1 is still in the recent window: the test does not test the fix")
		}
		before := s.cursorOf(c, "a", "p")
		expect(t, s.run(t0.Add(10*time.Minute), msg(c, "a", "p", "x1", 1), msg(c, "a", "p", "x2", 2)),
			outcome{0, "dup:0", "x1", false}, outcome{0, "dup:0", "x2", false})
		if got := s.m.LastSeq(c); got != 1003 {
			t.Fatalf("LastSeq = %d after repeats, want 1003", got)
		}
		if after := s.cursorOf(c, "a", "p"); after != before || after != "2 open=[]" {
			t.Fatalf("cursor %s after repeats, was %s, want 2 open=[]", after, before)
		}
		// The device goes on as before.
		expect(t, s.run(t0.Add(10*time.Minute), msg(c, "a", "p", "x3", 3)), outcome{1004, "msg", "x3", false})
	})
}

// (2) A client_seq passed over by an expired hold is still sequenced when it
// comes late; a copy of it after that is a duplicate, inside the window
// (with its seq) and past it.
func TestPassedOverSendArrivesLate(t *testing.T) {
	bothWays(t, func(t *testing.T, restarts bool) {
		s := newStateful(t, Options{HoldWindow: 2 * time.Second, RecentPerConversation: 3}, restarts)
		c := "dm:a:b"
		expect(t, s.run(t0, msg(c, "a", "p", "m1", 1), msg(c, "a", "p", "m4", 4)), outcome{1, "msg", "m1", false})
		expect(t, s.expire(t0.Add(2*time.Second)), outcome{2, "msg", "m4", true})
		if got := s.cursorOf(c, "a", "p"); got != "4 open=[{2 3}]" {
			t.Fatalf("cursor %s, want 4 open=[{2 3}]", got)
		}
		// Far more than the window later, 3 and 2 arrive: sequenced as today.
		s.run(t0.Add(3*time.Second), fill(c, "b", "w", "b", 1, 5)...)
		expect(t, s.run(t0.Add(4*time.Second), msg(c, "a", "p", "m3", 3)), outcome{8, "msg", "m3", false})
		expect(t, s.run(t0.Add(4*time.Second), msg(c, "a", "p", "m3", 3)), outcome{0, "dup:8", "m3", false})
		if got := s.cursorOf(c, "a", "p"); got != "4 open=[{2 2}]" {
			t.Fatalf("cursor %s, want 4 open=[{2 2}]", got)
		}
		s.run(t0.Add(5*time.Second), fill(c, "b", "w", "c", 6, 5)...)
		expect(t, s.run(t0.Add(6*time.Second), msg(c, "a", "p", "m2", 2), msg(c, "a", "p", "m3", 3)),
			outcome{14, "msg", "m2", false}, outcome{0, "dup:0", "m3", false})
		s.run(t0.Add(7*time.Second), fill(c, "b", "w", "d", 11, 5)...)
		expect(t, s.run(t0.Add(8*time.Second), msg(c, "a", "p", "m2", 2), msg(c, "a", "p", "m1", 1), msg(c, "a", "p", "m4", 4)),
			outcome{0, "dup:0", "m2", false}, outcome{0, "dup:0", "m1", false}, outcome{0, "dup:0", "m4", false})
		if got := s.cursorOf(c, "a", "p"); got != "4 open=[]" {
			t.Fatalf("cursor %s, want 4 open=[]", got)
		}
	})
}

// (3) A rejected send is evaluated again when resent, however late: rejected
// again while still not allowed, sequenced once allowed (the sender joined),
// and a duplicate after that.
func TestRejectedSendIsEvaluatedAgain(t *testing.T) {
	bothWays(t, func(t *testing.T, restarts bool) {
		s := newStateful(t, Options{RecentPerConversation: 2}, restarts)
		g := "g:x"
		expect(t, s.run(t0, create(g, "a", "c")), outcome{1, "created", "c", false})
		expect(t, s.run(t0, msg(g, "carol", "p", "r1", 1), msg(g, "carol", "p", "r2", 2)),
			outcome{0, "reject:not_member", "r1", false}, outcome{0, "reject:not_member", "r2", false})
		if got := s.cursorOf(g, "carol", "p"); got != "2 open=[{1 2}]" {
			t.Fatalf("cursor %s, want 2 open=[{1 2}]", got)
		}
		s.run(t0, fill(g, "a", "p", "a", 1, 5)...)
		expect(t, s.run(t0, msg(g, "carol", "p", "r2", 2)), outcome{0, "reject:not_member", "r2", false})
		expect(t, s.run(t0, join(g, "carol", "carol", "j")), outcome{7, "joined", "j", false})
		expect(t, s.run(t0, msg(g, "carol", "p", "r2", 2), msg(g, "carol", "p", "r2", 2)),
			outcome{8, "msg", "r2", false}, outcome{0, "dup:8", "r2", false})
		if got := s.cursorOf(g, "carol", "p"); got != "2 open=[{1 1}]" {
			t.Fatalf("cursor %s, want 2 open=[{1 1}]", got)
		}
		s.run(t0, fill(g, "a", "p", "b", 6, 3)...)
		expect(t, s.run(t0, msg(g, "carol", "p", "r2", 2), msg(g, "carol", "p", "r1", 1), msg(g, "carol", "p", "r3", 3)),
			outcome{0, "dup:0", "r2", false}, outcome{12, "msg", "r1", false}, outcome{13, "msg", "r3", false})
		// Rejected again after leaving: open again, then a duplicate once in.
		expect(t, s.run(t0, leave(g, "carol", "l"), msg(g, "carol", "p", "r4", 4)),
			outcome{14, "left", "l", false}, outcome{0, "reject:not_member", "r4", false})
		s.run(t0, fill(g, "a", "p", "c", 9, 3)...)
		expect(t, s.run(t0, msg(g, "carol", "p", "r3", 3), msg(g, "carol", "p", "r4", 4)),
			outcome{0, "dup:0", "r3", false}, outcome{0, "reject:not_member", "r4", false})
		if got := s.cursorOf(g, "carol", "p"); got != "4 open=[{4 4}]" {
			t.Fatalf("cursor %s, want 4 open=[{4 4}]", got)
		}
	})
}

// The open set stays within its bound: the closest ranges merge, so what was
// never sequenced stays open (a late send is never lost as a "duplicate"),
// at the price of exactness for the sequenced client_seqs between them.
func TestOpenRangesAreBounded(t *testing.T) {
	bothWays(t, func(t *testing.T, restarts bool) {
		s := newStateful(t, Options{HoldWindow: time.Second, RecentPerConversation: 1, MaxOpenRangesPerDevice: 2}, restarts)
		c := "dm:a:b"
		now := t0
		// Sends 1, 3, 4, 6, 9 arrive; 2, 5, 7 and 8 never do: three gaps.
		for _, cs := range []uint64{1, 3, 4, 6, 9} {
			s.run(now, msg(c, "a", "p", fmt.Sprint("m", cs), cs))
			now = now.Add(time.Second)
			s.expire(now)
		}
		if got := s.cursorOf(c, "a", "p"); got != "9 open=[{2 2} {5 8}]" {
			t.Fatalf("cursor %s, want 9 open=[{2 2} {5 8}] (5 and 7-8 merged over 6)", got)
		}
		e := s.store[cursorKey(c, device{"a", "p"})].GetCursor()
		if len(e.GetOpen()) != 2 {
			t.Fatalf("state entry holds %d open ranges, want 2: %v", len(e.GetOpen()), e)
		}
		s.run(now, msg(c, "b", "w", "b1", 1)) // push every send of a out of the window
		expect(t, s.run(now, msg(c, "a", "p", "m8", 8), msg(c, "a", "p", "m2", 2), msg(c, "a", "p", "m4", 4)),
			outcome{7, "msg", "m8", false}, outcome{8, "msg", "m2", false}, outcome{0, "dup:0", "m4", false})
		if got := s.cursorOf(c, "a", "p"); got != "9 open=[{5 7}]" {
			t.Fatalf("cursor %s, want 9 open=[{5 7}]", got)
		}
	})
}

func TestCursorOpenSet(t *testing.T) {
	var d cursor
	d.addOpen(2, 2, 8)
	d.addOpen(3, 3, 8)
	d.addOpen(5, 6, 8)
	d.addOpen(0, 0, 8) // client_seq 0 has no place in an order
	if fmt.Sprint(d.open) != "[{2 3} {5 6}]" {
		t.Fatalf("open = %v", d.open)
	}
	d.addOpen(4, 4, 8)
	if fmt.Sprint(d.open) != "[{2 6}]" {
		t.Fatalf("open = %v, want one range", d.open)
	}
	d.closeSeq(4, 8)
	d.closeSeq(2, 8)
	d.closeSeq(9, 8)
	if fmt.Sprint(d.open) != "[{3 3} {5 6}]" {
		t.Fatalf("open = %v", d.open)
	}
	for cs, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: false, 5: true, 6: true, 7: false} {
		if d.isOpen(cs) != want {
			t.Errorf("isOpen(%d) = %v", cs, !want)
		}
	}
	d.addOpen(1, 8, 8) // overlapping everything
	if fmt.Sprint(d.open) != "[{1 8}]" {
		t.Fatalf("open = %v", d.open)
	}
	// Bound 2: a split that would make three ranges merges the closest pair.
	d = cursor{open: []seqRange{{1, 1}, {10, 20}}}
	d.closeSeq(15, 2)
	if fmt.Sprint(d.open) != "[{1 1} {10 20}]" {
		t.Fatalf("open = %v", d.open)
	}
	d.addOpen(30, 30, 2) // gaps 9 (1..10) and 10 (20..30): the first pair merges
	if fmt.Sprint(d.open) != "[{1 20} {30 30}]" {
		t.Fatalf("open = %v", d.open)
	}
}

// A cursor entry written before open sets existed does not say which of its
// client_seqs were rejected or passed over: all of them stay open (a late
// send is evaluated, never taken for a repeat), later ones are exact.
func TestLegacyCursorEntryKeepsOldClientSeqsOpen(t *testing.T) {
	c := "dm:a:b"
	store := map[string]*imv1.StateEntry{
		headKey(c): {Version: imv1.Version, Entry: &imv1.StateEntry_Head{Head: &imv1.ConversationHead{ConversationId: c, LastSeq: 9, Created: true}}},
		cursorKey(c, device{"a", "p"}): {Version: imv1.Version, Entry: &imv1.StateEntry_Cursor{Cursor: &imv1.DeviceCursor{
			ConversationId: c, UserId: "a", DeviceId: "p", LastClientSeq: 5}}},
	}
	m, err := Restore(Options{}, store)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, run(m, t0, msg(c, "a", "p", "old3", 3), msg(c, "a", "p", "new6", 6)),
		outcome{10, "msg", "old3", false}, outcome{11, "msg", "new6", false})
	m.opts.RecentPerConversation = 1 // (white box) push both out of the window
	m.remember(m.convs[c], &imv1.RecentSend{ConversationId: c, SenderUserId: "b", ClientMsgId: "z", Seq: 11})
	m.remember(m.convs[c], &imv1.RecentSend{ConversationId: c, SenderUserId: "b", ClientMsgId: "y", Seq: 11})
	expect(t, run(m, t0, msg(c, "a", "p", "new6", 6)), outcome{0, "dup:0", "new6", false})
	if d := m.convs[c].cursors[device{"a", "p"}]; fmt.Sprint(d.last, d.open) != "6 [{1 2} {4 5}]" {
		t.Fatalf("cursor %d %v, want 6 [{1 2} {4 5}]", d.last, d.open)
	}
}
