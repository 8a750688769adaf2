package sequencer

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func msg(conv, user, dev, cmid string, clientSeq uint64) *imv1.RawRecord {
	return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: cmid, SenderUserId: user,
		SenderDeviceId: dev, ClientSeq: clientSeq,
		Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(cmid)}}}
}

func ctl(conv, user, cmid string, c *imv1.Control) *imv1.RawRecord {
	return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: cmid, SenderUserId: user,
		SenderDeviceId: "d", Body: &imv1.RawRecord_Control{Control: c}}
}

func create(conv, user, cmid string, members ...string) *imv1.RawRecord {
	return ctl(conv, user, cmid, &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{Title: "t", InitialMembers: members}}})
}
func join(conv, actor, user, cmid string) *imv1.RawRecord {
	return ctl(conv, actor, cmid, &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: user}}})
}
func leave(conv, user, cmid string) *imv1.RawRecord {
	return ctl(conv, user, cmid, &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}})
}
func kick(conv, actor, user, cmid string) *imv1.RawRecord {
	return ctl(conv, actor, cmid, &imv1.Control{Op: &imv1.Control_Kick{Kick: &imv1.Kick{UserId: user}}})
}
func revise(conv, user, cmid string, rev *imv1.Revision) *imv1.RawRecord {
	return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: cmid, SenderUserId: user,
		SenderDeviceId: "d", Body: &imv1.RawRecord_Revision{Revision: rev}}
}
func edit(conv, user, cmid string, seq uint64, text string) *imv1.RawRecord {
	return revise(conv, user, cmid, &imv1.Revision{TargetSeq: seq,
		Op: &imv1.Revision_Edit{Edit: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(text)}}})
}
func recall(conv, user, cmid string, seq uint64) *imv1.RawRecord {
	return revise(conv, user, cmid, &imv1.Revision{TargetSeq: seq, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}})
}

// read is a read mark, as the gateway writes it: client_seq 0 and a
// client_msg_id of its own.
func read(conv, user, dev string, seq uint64) *imv1.RawRecord {
	return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: fmt.Sprintf("read-%s-%d", dev, seq),
		SenderUserId: user, SenderDeviceId: dev, Body: &imv1.RawRecord_Read{Read: &imv1.ReadMark{Seq: seq}}}
}

// outcome is what one send produced, in a form tests compare.
type outcome struct {
	seq  uint64
	what string // "msg", "created", "joined", ..., "reject:<code>", "dup:<seq>"
	cmid string
	pm   bool
}

func (o outcome) String() string { return fmt.Sprintf("%s#%d:%s pm=%v", o.cmid, o.seq, o.what, o.pm) }

func outcomes(recs []*imv1.SequencedRecord) []outcome {
	var out []outcome
	for _, r := range recs {
		o := outcome{seq: r.Seq, cmid: r.ClientMsgId, pm: r.PredecessorMissing}
		switch b := r.Body.(type) {
		case *imv1.SequencedRecord_Message:
			o.what = "msg"
		case *imv1.SequencedRecord_Membership:
			o.what = map[imv1.MembershipEvent_Kind]string{imv1.MembershipEvent_CREATED: "created",
				imv1.MembershipEvent_JOINED: "joined", imv1.MembershipEvent_LEFT: "left", imv1.MembershipEvent_KICKED: "kicked"}[b.Membership.Kind]
		case *imv1.SequencedRecord_Rejection:
			o.what = "reject:" + b.Rejection.Code
		case *imv1.SequencedRecord_Duplicate:
			o.what = fmt.Sprintf("dup:%d", b.Duplicate.OriginalSeq)
		case *imv1.SequencedRecord_ReadReceipt:
			o.what = fmt.Sprintf("read:%s:%d", b.ReadReceipt.UserId, b.ReadReceipt.ReadSeq)
		case *imv1.SequencedRecord_Revision:
			o.what = fmt.Sprintf("edit:%d", b.Revision.TargetSeq)
			if b.Revision.GetRecall() != nil {
				o.what = fmt.Sprintf("recall:%d", b.Revision.TargetSeq)
			}
		}
		out = append(out, o)
	}
	return out
}

func run(m *Machine, now time.Time, recs ...*imv1.RawRecord) []outcome {
	for _, r := range recs {
		if err := CheckRaw(r); err != nil {
			panic(err)
		}
		m.Apply(r, now)
	}
	out, _ := m.Take()
	return outcomes(out)
}

func expect(t *testing.T, got []outcome, want ...outcome) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestDirectConversationIsContiguous(t *testing.T) {
	m := NewMachine(Options{})
	got := run(m, t0,
		msg("dm:alice:bob", "alice", "phone", "a1", 1),
		msg("dm:alice:bob", "bob", "web", "b1", 1),
		msg("dm:alice:bob", "alice", "laptop", "a2", 1),
		msg("dm:alice:bob", "carol", "x", "c1", 1),
		msg("dm:alice:bob", "alice", "phone", "a3", 2),
	)
	expect(t, got,
		outcome{1, "msg", "a1", false}, outcome{2, "msg", "b1", false}, outcome{3, "msg", "a2", false},
		outcome{0, "reject:not_member", "c1", false}, outcome{4, "msg", "a3", false})
	if m.LastSeq("dm:alice:bob") != 4 {
		t.Fatalf("LastSeq = %d, want 4", m.LastSeq("dm:alice:bob"))
	}
}

func TestGroupMembership(t *testing.T) {
	m := NewMachine(Options{})
	g := "g:team"
	expect(t, run(m, t0,
		msg(g, "alice", "d", "early", 0),
		join(g, "bob", "bob", "j0"),
		create(g, "alice", "c1", "bob", "bob", "alice"),
		create(g, "bob", "c2"),
		msg(g, "carol", "d", "m-carol", 0),
		join(g, "carol", "carol", "j1"),
		msg(g, "carol", "d", "m-carol2", 0),
		join(g, "dave", "erin", "j2"),
		join(g, "bob", "erin", "j3"),
		join(g, "bob", "erin", "j4"),
		leave(g, "carol", "l1"),
		msg(g, "carol", "d", "m-carol3", 0),
		leave(g, "carol", "l2"),
		kick(g, "dave", "bob", "k1"),
		kick(g, "alice", "dave", "k2"),
		kick(g, "alice", "erin", "k3"),
		msg(g, "erin", "d", "m-erin", 0),
	),
		outcome{0, "reject:unknown_conversation", "early", false},
		outcome{0, "reject:unknown_conversation", "j0", false},
		outcome{1, "created", "c1", false},
		outcome{0, "reject:already_member", "c2", false},
		outcome{0, "reject:not_member", "m-carol", false},
		outcome{2, "joined", "j1", false},
		outcome{3, "msg", "m-carol2", false},
		outcome{0, "reject:not_member", "j2", false},
		outcome{4, "joined", "j3", false},
		outcome{0, "reject:already_member", "j4", false},
		outcome{5, "left", "l1", false},
		outcome{0, "reject:not_member", "m-carol3", false},
		outcome{0, "reject:not_member", "l2", false},
		outcome{0, "reject:not_member", "k1", false},
		outcome{0, "reject:not_member", "k2", false},
		outcome{6, "kicked", "k3", false},
		outcome{0, "reject:not_member", "m-erin", false},
	)
	m.Apply(create(g+"x", "alice", "cx", "bob"), t0)
	out, _ := m.Take()
	if got := out[0].GetMembership().GetUserIds(); fmt.Sprint(got) != "[alice bob]" {
		t.Fatalf("CREATED members = %v, want [alice bob] (creator first, duplicates dropped)", got)
	}
}

func TestDirectConversationRefusesControl(t *testing.T) {
	m := NewMachine(Options{})
	expect(t, run(m, t0, join("dm:a:b", "a", "c", "j")), outcome{0, "reject:invalid", "j", false})
}

func TestDuplicateGetsOriginalSeq(t *testing.T) {
	m := NewMachine(Options{})
	c := "dm:a:b"
	expect(t, run(m, t0,
		msg(c, "a", "p", "x", 1),
		msg(c, "a", "p", "y", 2),
		msg(c, "a", "p", "x", 1), // retry
		msg(c, "a", "w", "x", 1), // same id from another device of the same user
		msg(c, "b", "p", "x", 1), // another sender may use the same id
	),
		outcome{1, "msg", "x", false}, outcome{2, "msg", "y", false},
		outcome{0, "dup:1", "x", false}, outcome{0, "dup:1", "x", false}, outcome{3, "msg", "x", false})
}

func TestDedupWindowIsBounded(t *testing.T) {
	m := NewMachine(Options{RecentPerConversation: 2})
	c := "dm:a:b"
	run(m, t0, msg(c, "a", "p", "1", 0), msg(c, "a", "p", "2", 0), msg(c, "a", "p", "3", 0))
	expect(t, run(m, t0, msg(c, "a", "p", "3", 0), msg(c, "a", "p", "1", 0)),
		outcome{0, "dup:3", "3", false}, outcome{4, "msg", "1", false})
}

func TestHoldWindowKeepsSenderOrder(t *testing.T) {
	m := NewMachine(Options{HoldWindow: 2 * time.Second})
	c := "dm:a:b"
	// 3 and 4 arrive before 2: held until 2 comes, then all in order.
	expect(t, run(m, t0, msg(c, "a", "p", "m1", 1), msg(c, "a", "p", "m3", 3), msg(c, "a", "p", "m4", 4)),
		outcome{1, "msg", "m1", false})
	if m.Held() != 2 {
		t.Fatalf("Held = %d, want 2", m.Held())
	}
	// Another device is not held back by this one's gap.
	expect(t, run(m, t0, msg(c, "b", "p", "b1", 1)), outcome{2, "msg", "b1", false})
	// A duplicate of a held send is not held twice.
	run(m, t0, msg(c, "a", "p", "m3", 3))
	if m.Held() != 2 {
		t.Fatalf("Held after duplicate = %d, want 2", m.Held())
	}
	expect(t, run(m, t0.Add(time.Second), msg(c, "a", "p", "m2", 2)),
		outcome{3, "msg", "m2", false}, outcome{4, "msg", "m3", false}, outcome{5, "msg", "m4", false})
	if m.Held() != 0 {
		t.Fatalf("Held = %d, want 0", m.Held())
	}
}

func TestHoldWindowExpires(t *testing.T) {
	m := NewMachine(Options{HoldWindow: 2 * time.Second})
	c := "dm:a:b"
	run(m, t0, msg(c, "a", "p", "m1", 1), msg(c, "a", "p", "m3", 3))
	m.Expire(t0.Add(1999 * time.Millisecond))
	if out, _ := m.Take(); len(out) != 0 {
		t.Fatalf("released before the window: %v", outcomes(out))
	}
	m.Expire(t0.Add(2 * time.Second))
	out, _ := m.Take()
	expect(t, outcomes(out), outcome{2, "msg", "m3", true})
	// The lost predecessor arrives late: it is sequenced, after its successor.
	expect(t, run(m, t0.Add(3*time.Second), msg(c, "a", "p", "m2", 2), msg(c, "a", "p", "m4", 4)),
		outcome{3, "msg", "m2", false}, outcome{4, "msg", "m4", false})
}

// TestRestoredHoldsGetAWholeWindow: a send held before a restart waits a
// whole window from the restore, not from when it was first held.
func TestRestoredHoldsGetAWholeWindow(t *testing.T) {
	opts := Options{HoldWindow: 2 * time.Second}
	m := NewMachine(opts)
	c := "dm:a:b"
	store := map[string]*imv1.StateEntry{}
	m.Apply(msg(c, "a", "p", "m1", 1), t0)
	m.Apply(msg(c, "a", "p", "m3", 3), t0)
	takeStore(t, m, store)
	restored, err := Restore(opts, store)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(5 * time.Second) // the partition had no owner meanwhile
	restored.RestartHolds(at)
	restored.Expire(at.Add(time.Second))
	if out, _ := restored.Take(); len(out) != 0 {
		t.Fatalf("released within the window after the restore: %v", outcomes(out))
	}
	expect(t, run(restored, at.Add(time.Second), msg(c, "a", "p", "m2", 2)),
		outcome{2, "msg", "m2", false}, outcome{3, "msg", "m3", false})
}

func TestHeldSendsAreBounded(t *testing.T) {
	m := NewMachine(Options{MaxHeldPerConversation: 2})
	c := "dm:a:b"
	expect(t, run(m, t0, msg(c, "a", "p", "a3", 3)))
	expect(t, run(m, t0.Add(time.Millisecond), msg(c, "b", "p", "b5", 5)))
	// A third held send releases the device that waited longest (a).
	expect(t, run(m, t0.Add(2*time.Millisecond), msg(c, "b", "w", "bw2", 2)), outcome{1, "msg", "a3", true})
	if m.Held() != 2 {
		t.Fatalf("Held = %d, want 2", m.Held())
	}
}

func TestRejectedSendStillAdvancesSenderOrder(t *testing.T) {
	m := NewMachine(Options{})
	g := "g:x"
	run(m, t0, create(g, "a", "c"))
	// carol is not a member: her sends are rejected but never held waiting
	// for a predecessor that was rejected.
	expect(t, run(m, t0, msg(g, "carol", "p", "r1", 1), msg(g, "carol", "p", "r2", 2)),
		outcome{0, "reject:not_member", "r1", false}, outcome{0, "reject:not_member", "r2", false})
	if m.Held() != 0 {
		t.Fatalf("Held = %d, want 0", m.Held())
	}
}

func TestCheckRawRefusesUnprocessableRecords(t *testing.T) {
	good := msg("dm:a:b", "a", "p", "x", 1)
	for name, mutate := range map[string]func(r *imv1.RawRecord){
		"no conversation":  func(r *imv1.RawRecord) { r.ConversationId = "" },
		"unsorted dm":      func(r *imv1.RawRecord) { r.ConversationId = "dm:b:a" },
		"unknown kind":     func(r *imv1.RawRecord) { r.ConversationId = "room:1" },
		"no client_msg_id": func(r *imv1.RawRecord) { r.ClientMsgId = "" },
		"NUL in sender":    func(r *imv1.RawRecord) { r.SenderUserId = "a\x00b" },
		"no device":        func(r *imv1.RawRecord) { r.SenderDeviceId = "" },
		"no body":          func(r *imv1.RawRecord) { r.Body = nil },
		"empty control":    func(r *imv1.RawRecord) { r.Body = &imv1.RawRecord_Control{Control: &imv1.Control{}} },
	} {
		r := proto.Clone(good).(*imv1.RawRecord)
		mutate(r)
		if err := CheckRaw(r); err == nil {
			t.Errorf("%s: CheckRaw accepted it", name)
		}
	}
	if err := CheckRaw(good); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreContinuesExactly: a machine restored from the state changes of
// a prefix of the input must answer the rest exactly like one that never
// stopped, for random workloads with gaps, duplicates and membership churn.
func TestRestoreContinuesExactly(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		input := randomWorkload(rng, 300)
		cut := rng.Intn(len(input))
		opts := Options{HoldWindow: 50 * time.Millisecond, RecentPerConversation: 20, MaxHeldPerConversation: 5}

		whole := NewMachine(opts)
		var wholeOut []*imv1.SequencedRecord
		first := NewMachine(opts)
		store := map[string]*imv1.StateEntry{}
		for i, step := range input {
			apply(whole, step)
			out, _ := whole.Take()
			if i >= cut {
				wholeOut = append(wholeOut, out...)
			}
			if i < cut {
				apply(first, step)
				takeStore(t, first, store)
			}
		}
		restored, err := Restore(opts, store)
		if err != nil {
			t.Fatal(err)
		}
		var restoredOut []*imv1.SequencedRecord
		for _, step := range input[cut:] {
			apply(restored, step)
			out, _ := restored.Take()
			restoredOut = append(restoredOut, out...)
		}
		if len(wholeOut) != len(restoredOut) {
			t.Fatalf("seed %d cut %d: %d outputs after restore, want %d", seed, cut, len(restoredOut), len(wholeOut))
		}
		for i := range wholeOut {
			if !proto.Equal(wholeOut[i], restoredOut[i]) {
				t.Fatalf("seed %d cut %d: output %d differs:\nrestored %v\nwhole    %v", seed, cut, i, restoredOut[i], wholeOut[i])
			}
		}
	}
}

type step struct {
	rec *imv1.RawRecord // nil: an Expire tick
	at  time.Time
}

func apply(m *Machine, s step) {
	if s.rec == nil {
		m.Expire(s.at)
		return
	}
	m.Apply(s.rec, s.at)
}

func roundTrip(t *testing.T, e *imv1.StateEntry) *imv1.StateEntry {
	b, err := imv1.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var out imv1.StateEntry
	if err := imv1.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// randomWorkload mixes messages from several devices (with gaps, swaps and
// retries), membership changes and expiry ticks over a few conversations.
func randomWorkload(rng *rand.Rand, n int) []step { return randomWorkloadRetrying(rng, n, false) }

// randomWorkloadRetrying is randomWorkload; with orderedRetriesOnly, only
// sends with a client_seq are retried. Exact dedup beyond the recent window
// needs a client_seq: a send without one (client_seq 0) is deduplicated only
// inside the window.
func randomWorkloadRetrying(rng *rand.Rand, n int, orderedRetriesOnly bool) []step {
	users := []string{"u1", "u2", "u3", "u4"}
	convs := []string{"g:a", "g:b", "dm:u1:u2"}
	clientSeq := map[string]uint64{}
	now := t0
	var sent []*imv1.RawRecord
	var out []step
	for i := 0; i < n; i++ {
		now = now.Add(time.Duration(rng.Intn(20)) * time.Millisecond)
		conv := convs[rng.Intn(len(convs))]
		u := users[rng.Intn(len(users))]
		cmid := fmt.Sprintf("c%d", i)
		var r *imv1.RawRecord
		switch k := rng.Intn(20); {
		case k == 0:
			out = append(out, step{nil, now})
			continue
		case k == 1 && len(sent) > 0:
			r = sent[rng.Intn(len(sent))] // a retry
			if orderedRetriesOnly && r.ClientSeq == 0 {
				continue
			}
		case k == 2:
			r = create(conv, u, cmid, users[rng.Intn(len(users))])
		case k == 3:
			r = join(conv, u, users[rng.Intn(len(users))], cmid)
		case k == 4:
			r = leave(conv, u, cmid)
		case k == 5:
			r = kick(conv, u, users[rng.Intn(len(users))], cmid)
		case k == 6:
			r = edit(conv, u, cmid, uint64(1+rng.Intn(30)), "edited")
		case k == 7:
			r = recall(conv, u, cmid, uint64(1+rng.Intn(30)))
		case k == 8 || k == 9:
			r = read(conv, u, fmt.Sprintf("d%d", rng.Intn(2)), uint64(1+rng.Intn(40)))
		default:
			dev := fmt.Sprintf("d%d", rng.Intn(2))
			key := conv + u + dev
			clientSeq[key]++
			cs := clientSeq[key]
			if rng.Intn(6) == 0 {
				clientSeq[key]++ // a send that never arrives
			}
			r = msg(conv, u, dev, cmid, cs)
		}
		if conv == "dm:u1:u2" && (u == "u3" || u == "u4") && r.GetMessage() == nil {
			r = msg(conv, u, "d0", cmid, 0)
		}
		sent = append(sent, r)
		out = append(out, step{r, now})
	}
	// Swap some neighbours: the raw topic may reorder retried batches.
	for i := 0; i+1 < len(out); i += 7 {
		out[i].rec, out[i+1].rec = out[i+1].rec, out[i].rec
	}
	return out
}

// TestRevisionRules: an edit or recall takes its own seq; only the sender
// edits; the sender recalls within the recall window, the group's creator
// at any time; nothing follows a recall; membership events, unknown seqs
// and sends past the recent window cannot be revised; non-members cannot
// revise. The rules survive a restore.
func TestRevisionRules(t *testing.T) {
	opts := Options{RecentPerConversation: 6, RecallWindow: time.Minute}
	store := map[string]*imv1.StateEntry{}
	// apply runs recs and keeps the state changes, as the state topic does.
	apply := func(m *Machine, now time.Time, recs ...*imv1.RawRecord) []outcome {
		for _, r := range recs {
			m.Apply(r, now)
		}
		return outcomes(takeStore(t, m, store))
	}
	restore := func() *Machine {
		m, err := Restore(opts, store)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := NewMachine(opts)
	g, dm := "g:r", "dm:u1:u2"
	got := apply(m, t0,
		create(g, "u1", "c", "u2", "u3"), // 1
		msg(g, "u2", "d", "m2", 0),       // 2
		msg(g, "u3", "d", "m3", 0),       // 3
		edit(g, "u2", "e2", 2, "v2"),     // 4: its sender edits
		edit(g, "u3", "x1", 2, "no"),     // another member may not
		edit(g, "u2", "x2", 1, "no"),     // a membership event is not a message
		edit(g, "u2", "x3", 9, "no"),     // no such seq
		edit(g, "u4", "x4", 3, "no"),     // not a member
		edit(dm, "u1", "x5", 1, "no"),    // nothing in the dm yet
		msg(dm, "u1", "d", "dm1", 0),     // dm 1
		recall(dm, "u2", "x6", 1),        // the other user of a dm may not recall
		edit(g, "u2", "e4", 4, "v3"),     // an edit is not a message: not editable
	)
	checkWhats(t, "first", got, []string{"created", "msg", "msg", "edit:2", "reject:not_allowed", "reject:invalid",
		"reject:invalid", "reject:not_member", "reject:invalid", "msg", "reject:not_allowed", "reject:invalid"})

	// Restored from its state store, the machine keeps every rule.
	m = restore()
	got = apply(m, t0.Add(2*time.Minute),
		recall(g, "u2", "r1", 2),   // past the window for its sender
		recall(g, "u1", "r2", 2),   // 5: the creator may, any time
		edit(g, "u2", "x7", 2, ""), // nothing after a recall
		recall(g, "u1", "x8", 2),   // not twice
		recall(g, "u3", "r3", 3),   // past the window
	)
	checkWhats(t, "restored", got, []string{"reject:too_old", "recall:2", "reject:invalid", "reject:invalid", "reject:too_old"})
	m = restore()
	now := t0.Add(3 * time.Minute)
	got = apply(m, now, msg(g, "u3", "d", "m6", 0), recall(g, "u3", "r6", 6), recall(g, "u1", "x9", 2), edit(g, "u3", "x10", 6, ""))
	checkWhats(t, "restored twice", got, []string{"msg", "recall:6", "reject:invalid", "reject:invalid"})
	// Past the recent window (6 sends) a message cannot be revised.
	for i := range 6 {
		apply(m, now, msg(g, "u3", "d", fmt.Sprintf("f%d", i), 0))
	}
	got = apply(restore(), now, edit(g, "u3", "x11", 3, "late"), edit(g, "u3", "e13", 13, "in time"))
	checkWhats(t, "past the window", got, []string{"reject:too_old", "edit:13"})
}

func checkWhats(t *testing.T, what string, got []outcome, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outcomes %v, want %v", what, len(got), got, want)
	}
	for i, o := range got {
		if o.what != want[i] {
			t.Errorf("%s: outcome %d is %v, want %s", what, i, o, want[i])
		}
	}
}
