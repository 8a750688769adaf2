package sequencer

import (
	"testing"
	"time"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// takeStore applies the machine's pending state changes to store.
func takeStore(t *testing.T, m *Machine, store map[string]*imv1.StateEntry) []*imv1.SequencedRecord {
	t.Helper()
	out, changes := m.Take()
	for _, c := range changes {
		if c.Entry == nil {
			delete(store, c.Key)
		} else {
			store[c.Key] = roundTrip(t, c.Entry)
		}
	}
	return out
}

func TestEpochIsChosenAtTheFirstSeqAndKept(t *testing.T) {
	const conv = "dm:alice:bob"
	m := NewMachine(Options{})
	store := map[string]*imv1.StateEntry{}
	if m.Apply(msg(conv, "carol", "x", "c1", 1), t0); m.Epoch(conv) != 0 {
		t.Fatalf("a rejection gave %s an epoch", conv)
	}
	takeStore(t, m, store)
	m.Apply(msg(conv, "alice", "p", "a1", 1), t0.Add(time.Second))
	m.Apply(msg(conv, "alice", "p", "a2", 2), t0.Add(2*time.Second))
	m.Apply(msg(conv, "carol", "x", "c2", 2), t0.Add(3*time.Second))
	e1 := uint64(t0.Add(time.Second).UnixMilli())
	for _, r := range takeStore(t, m, store) {
		if r.Epoch != e1 {
			t.Fatalf("seq %d (%s) has epoch %d, want %d (the clock at seq 1)", r.Seq, r.ClientMsgId, r.Epoch, e1)
		}
	}
	restored, err := Restore(Options{}, store)
	if err != nil {
		t.Fatal(err)
	}
	restored.Apply(msg(conv, "bob", "w", "b1", 1), t0.Add(time.Hour))
	out, _ := restored.Take()
	if len(out) != 1 || out[0].Seq != 3 || out[0].Epoch != e1 {
		t.Fatalf("after restore: %v, want seq 3 of epoch %d", out, e1)
	}
	if out[0].MsgId != MsgID(conv, e1, 3) || out[0].MsgId == MsgID(conv, 0, 3) {
		t.Fatalf("msg_id %q is not derived from the epoch", out[0].MsgId)
	}

	// The state lost: the stream starts again at seq 1 under a new epoch,
	// and its msg_ids differ from the old epoch's.
	rebuilt := NewMachine(Options{})
	rebuilt.Apply(msg(conv, "alice", "p", "a1", 1), t0.Add(2*time.Hour))
	out, _ = rebuilt.Take()
	e2 := uint64(t0.Add(2 * time.Hour).UnixMilli())
	if len(out) != 1 || out[0].Seq != 1 || out[0].Epoch != e2 || e2 <= e1 {
		t.Fatalf("rebuilt: %v, want seq 1 of epoch %d > %d", out, e2, e1)
	}
	if out[0].MsgId == MsgID(conv, e1, 1) {
		t.Fatalf("seq 1 of two epochs got the same msg_id %q", out[0].MsgId)
	}
}

func TestLegacyHeadKeepsEpochZero(t *testing.T) {
	const conv = "g:old"
	// State written before epochs: a head with seqs and no epoch.
	store := map[string]*imv1.StateEntry{
		headKey(conv): {Version: imv1.Version, Entry: &imv1.StateEntry_Head{Head: &imv1.ConversationHead{
			ConversationId: conv, LastSeq: 7, Created: true, Title: "t", Creator: "alice"}}},
		memberKey(conv, "alice"): {Version: imv1.Version, Entry: &imv1.StateEntry_Member{Member: &imv1.Member{
			ConversationId: conv, UserId: "alice", JoinedSeq: 1}}},
	}
	m, err := Restore(Options{}, store)
	if err != nil {
		t.Fatal(err)
	}
	m.Apply(msg(conv, "alice", "p", "a8", 0), t0)
	out, changes := m.Take()
	if len(out) != 1 || out[0].Seq != 8 || out[0].Epoch != 0 {
		t.Fatalf("legacy conversation: %v, want seq 8 of epoch 0", out)
	}
	// Epoch 0 keeps the derivation of before epochs (the value the code of
	// before epochs gives for g:old seq 8).
	if out[0].MsgId != MsgID(conv, 0, 8) || out[0].MsgId != "dchlqd0ra9l7qla3nkoougg6eg" {
		t.Fatalf("legacy msg_id %q changed", out[0].MsgId)
	}
	for _, c := range changes {
		if h := c.Entry.GetHead(); h != nil && h.Epoch != 0 {
			t.Fatalf("legacy head got epoch %d", h.Epoch)
		}
	}
}

func TestCheckerRefusesMixedEpochs(t *testing.T) {
	rec := func(epoch, seq uint64) *imv1.SequencedRecord {
		return &imv1.SequencedRecord{ConversationId: "dm:a:b", Epoch: epoch, Seq: seq, MsgId: MsgID("dm:a:b", epoch, seq),
			SenderUserId: "a", ClientMsgId: "m" + string(rune('a'+seq)) + string(rune('a'+epoch%7)),
			Body: &imv1.SequencedRecord_Message{Message: &imv1.ChatMessage{}}}
	}
	c := NewChecker()
	for _, r := range []*imv1.SequencedRecord{rec(10, 1), rec(10, 2), rec(20, 1), rec(20, 2)} {
		c.Add(r)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("a new epoch from seq 1: %v", err)
	}
	c.Add(rec(10, 3))
	if c.Err() == nil {
		t.Fatal("an older epoch's seq after a newer epoch passed")
	}
}
