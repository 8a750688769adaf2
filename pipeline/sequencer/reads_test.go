package sequencer

import (
	"math/rand"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// TestReadMarks: a member's mark advances its read position (clamped to
// the last seq) with one receipt naming the marking device; a mark that
// does not advance it, from a non-member, or of a group that does not
// exist moves nothing and answers nothing.
func TestReadMarks(t *testing.T) {
	m := NewMachine(Options{})
	run(m, t0, create("g:x", "ann", "c1", "bob"), msg("g:x", "ann", "d", "m1", 1), msg("g:x", "ann", "d", "m2", 2))
	expect(t, run(m, t0, read("g:x", "bob", "phone", 2)), outcome{cmid: "read-phone-2", what: "read:bob:2"})
	out, changes := m.Take()
	if len(out) != 0 || len(changes) != 0 {
		t.Fatalf("Take after Take: %v %v", out, changes)
	}
	m.Apply(read("g:x", "bob", "phone", 3), t0)
	out, changes = m.Take()
	if len(out) != 1 || out[0].SenderDeviceId != "phone" || out[0].Seq != 0 || out[0].GetReadReceipt().GetReadSeq() != 3 {
		t.Fatalf("receipt %v", out)
	}
	if len(changes) != 1 || changes[0].Key != readKey("g:x", "bob") || changes[0].Entry.GetRead().GetReadSeq() != 3 {
		t.Fatalf("state changes %v", changes)
	}
	for name, r := range map[string]*imv1.RawRecord{
		"the same seq":            read("g:x", "bob", "tablet", 3),
		"a lower seq":             read("g:x", "bob", "tablet", 1),
		"past the head (clamped)": read("g:x", "bob", "tablet", 99),
		"a non-member":            read("g:x", "eve", "d", 3),
		"an unknown group":        read("g:nope", "bob", "d", 1),
		"an empty dm":             read("dm:ann:bob", "bob", "d", 1),
	} {
		if got := run(m, t0, r); len(got) != 0 {
			t.Errorf("%s: %v, want nothing", name, got)
		}
	}
	if n := m.TakeIgnoredReads(); n != 6 {
		t.Errorf("ignored reads %d, want 6", n)
	}
	if _, ok := m.convs["g:nope"]; ok {
		t.Error("a mark of an unknown group created its state")
	}
	// A mark past the head is clamped to it; the next message can then be read.
	run(m, t0, msg("g:x", "ann", "d", "m3", 3), msg("g:x", "ann", "d", "m4", 4))
	expect(t, run(m, t0, read("g:x", "bob", "tablet", 99)), outcome{cmid: "read-tablet-99", what: "read:bob:5"})
	// A read mark is not a send: the same client_msg_id again is another
	// mark, never a duplicate; it takes no seq and does not move the head.
	expect(t, run(m, t0, read("g:x", "ann", "tablet", 99)), outcome{cmid: "read-tablet-99", what: "read:ann:5"})
	if m.LastSeq("g:x") != 5 {
		t.Errorf("last seq %d, want 5", m.LastSeq("g:x"))
	}
	// A leaver's marks are ignored; its position is kept for a rejoin.
	run(m, t0, leave("g:x", "bob", "l1"))
	expect(t, run(m, t0, read("g:x", "bob", "phone", 6)))
	if got := m.ReadPosition("g:x", "bob"); got != 5 {
		t.Errorf("leaver's position %d, want 5", got)
	}
	run(m, t0, join("g:x", "bob", "bob", "j1"))
	expect(t, run(m, t0, read("g:x", "bob", "phone", 7)), outcome{cmid: "read-phone-7", what: "read:bob:7"})
}

// TestReadPositionsSurviveRestore: restored from its state store, the
// machine refuses the marks it refused before.
func TestReadPositionsSurviveRestore(t *testing.T) {
	m := NewMachine(Options{})
	store := map[string]*imv1.StateEntry{}
	take := func() []outcome {
		out, changes := m.Take()
		persist(t, store, changes)
		return outcomes(out)
	}
	for _, r := range []*imv1.RawRecord{msg("dm:ann:bob", "ann", "d", "m1", 1), msg("dm:ann:bob", "ann", "d", "m2", 2),
		msg("dm:ann:bob", "ann", "d", "m3", 3), read("dm:ann:bob", "bob", "phone", 3)} {
		m.Apply(r, t0)
	}
	take()
	var err error
	if m, err = Restore(Options{}, store); err != nil {
		t.Fatal(err)
	}
	m.Apply(read("dm:ann:bob", "bob", "tablet", 2), t0)
	m.Apply(read("dm:ann:bob", "bob", "tablet", 3), t0)
	expect(t, take())
	if got := m.ReadPosition("dm:ann:bob", "bob"); got != 3 {
		t.Errorf("restored position %d, want 3", got)
	}
}

// TestReceiptsNeverGoBackwards: over random workloads, with restores at
// random points, each user's receipts in a conversation come in strictly
// increasing read_seq, never past the conversation's last seq.
func TestReceiptsNeverGoBackwards(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		opts := Options{HoldWindow: 50e6, RecentPerConversation: 20, MaxHeldPerConversation: 5}
		m := NewMachine(opts)
		store := map[string]*imv1.StateEntry{}
		last := map[string]uint64{}
		head := map[string]uint64{}
		receipts := 0
		for i, s := range randomWorkload(rng, 400) {
			apply(m, s)
			out, changes := m.Take()
			persist(t, store, changes)
			for _, r := range out {
				if r.Seq > 0 {
					head[r.ConversationId] = r.Seq
				}
				rr := r.GetReadReceipt()
				if rr == nil {
					continue
				}
				receipts++
				k := r.ConversationId + sep + rr.UserId
				if rr.ReadSeq <= last[k] || rr.ReadSeq > head[r.ConversationId] || rr.UserId != r.SenderUserId || r.Seq != 0 {
					t.Fatalf("seed %d step %d: receipt %v after %d (head %d)", seed, i, r, last[k], head[r.ConversationId])
				}
				last[k] = rr.ReadSeq
			}
			if rng.Intn(50) == 0 {
				var err error
				if m, err = Restore(opts, store); err != nil {
					t.Fatal(err)
				}
			}
		}
		if receipts == 0 {
			t.Fatalf("seed %d: the workload made no receipt", seed)
		}
	}
}

// persist applies state changes to a state store, as the changelog does.
func persist(t *testing.T, store map[string]*imv1.StateEntry, changes []StateChange) {
	t.Helper()
	for _, c := range changes {
		if c.Entry == nil {
			delete(store, c.Key)
		} else {
			store[c.Key] = roundTrip(t, c.Entry)
		}
	}
}

// TestCheckerCatchesReceiptsGoingBack: the log checker (imctl tail, the
// sequencer's broker tests) refuses a receipt that does not advance its
// user's position or names a seq past the last.
func TestCheckerCatchesReceiptsGoingBack(t *testing.T) {
	m := NewMachine(Options{})
	for _, r := range []*imv1.RawRecord{msg("dm:ann:bob", "ann", "d", "m1", 1), msg("dm:ann:bob", "ann", "d", "m2", 2), read("dm:ann:bob", "bob", "p", 2)} {
		m.Apply(r, t0)
	}
	good, _ := m.Take()
	check := NewChecker()
	for _, r := range good {
		check.Add(r)
	}
	if err := check.Err(); err != nil {
		t.Fatal(err)
	}
	for name, seq := range map[string]uint64{"the same seq": 2, "a lower seq": 1, "past the last seq": 3} {
		check := NewChecker()
		for _, r := range good {
			check.Add(r)
		}
		back := proto.Clone(good[len(good)-1]).(*imv1.SequencedRecord)
		back.GetReadReceipt().ReadSeq = seq
		check.Add(back)
		if check.Err() == nil {
			t.Errorf("%s: the checker accepted a receipt at %d after 2", name, seq)
		}
	}
}
