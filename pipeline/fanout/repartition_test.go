package fanout_test

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// fence commits a fence entry to every partition of the env's state topic
// and an end record to every sequenced partition, as generation 1's
// sequencers do when they hand over to generation 2.
func (e *env) fence(to int32) {
	e.t.Helper()
	b, err := imv1.Marshal(&imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Fence{Fence: &imv1.FenceEntry{Generation: 2, Partitions: to}}})
	if err != nil {
		e.t.Fatal(err)
	}
	end, err := imv1.Marshal(&imv1.SequencedRecord{Version: imv1.Version})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.seq.BeginTxn(); err != nil {
		e.t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		if _, _, err := e.seq.SendMessage(&sarama.ProducerMessage{Topic: e.topics.SequencerState, Partition: p,
			Key: sarama.StringEncoder(generation.FenceKey), Value: sarama.ByteEncoder(b)}); err != nil {
			e.t.Fatal(err)
		}
		if _, _, err := e.seq.SendMessage(&sarama.ProducerMessage{Topic: e.topics.Sequenced, Partition: p,
			Key: sarama.StringEncoder(generation.FenceKey), Value: sarama.ByteEncoder(end)}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.seq.CommitTxn(); err != nil {
		e.t.Fatal(err)
	}
}

// abortedWrite writes an entry to every sequenced partition in a
// transaction it aborts: records and a marker no reader gets, after the
// end records.
func (e *env) abortedWrite() {
	e.t.Helper()
	if err := e.seq.BeginTxn(); err != nil {
		e.t.Fatal(err)
	}
	b, err := imv1.Marshal(&imv1.SequencedRecord{Version: imv1.Version, ConversationId: "g:aborted", Seq: 99})
	if err != nil {
		e.t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		if _, _, err := e.seq.SendMessage(&sarama.ProducerMessage{Topic: e.topics.Sequenced, Partition: p,
			Key: sarama.StringEncoder("g:aborted"), Value: sarama.ByteEncoder(b)}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.seq.AbortTxn(); err != nil {
		e.t.Fatal(err)
	}
}

// TestRepartitionImportsPeriods: a fanout of generation 2 (8 partitions)
// started before the hand-over routes nothing until generation 1 (4
// partitions) is fenced and routed (up to its end records; an aborted
// transaction after them is not waited for), then routes every later seq to exactly
// the members of the periods it imported (a leave and a join before the
// switch, a join and a leave after it), and on every gateway topic a
// conversation's generation 1 seqs come before its generation 2 seqs.
func TestRepartitionImportsPeriods(t *testing.T) {
	e := newEnv(t, "a", "b")
	stacktest.CreateTopics(t, generation.Specs(e.topics, kafkawire.Layout{}, 2, 8)...)
	e.announce(online("alice", "phone", "a", 1), online("bob", "phone", "a", 1), online("carol", "phone", "b", 1))
	got := e.read("a", "b")
	e.start()
	stacktest.Run(t, "fanout generation 2", e.newFanout(2).Run)

	const groups = 12
	var before, after []*imv1.SequencedRecord
	want := map[string]string{}
	for i := range groups {
		g := fmt.Sprintf("g:rp-%d", i)
		before = append(before, member(g, 1, imv1.MembershipEvent_CREATED, "alice", "bob"), msg(g, 2, "alice"))
		ab := map[string]string{"a": "alice/phone,bob/phone"}
		a := map[string]string{"a": "alice/phone"}
		abc := map[string]string{"a": "alice/phone,bob/phone", "b": "carol/phone"}
		ac := map[string]string{"a": "alice/phone", "b": "carol/phone"}
		expect := func(seq uint64, to map[string]string) {
			for gw, devs := range to {
				want[fmt.Sprintf("%s %s #%d m%d", gw, g, seq, seq)] = devs
			}
		}
		expect(1, ab)
		expect(2, ab)
		if i%2 == 0 { // bob leaves before the switch, carol joins after it
			before = append(before, member(g, 3, imv1.MembershipEvent_LEFT, "bob"))
			after = append(after, msg(g, 4, "alice"), member(g, 5, imv1.MembershipEvent_JOINED, "carol"), msg(g, 6, "alice"))
			expect(3, ab) // bob sees his leave
			expect(4, a)
			expect(5, ac) // carol sees her join
			expect(6, ac)
		} else { // carol joins before the switch, bob leaves after it
			before = append(before, member(g, 3, imv1.MembershipEvent_JOINED, "carol"))
			after = append(after, msg(g, 4, "alice"), member(g, 5, imv1.MembershipEvent_LEFT, "bob"), msg(g, 6, "alice"))
			expect(3, abc)
			expect(4, abc)
			expect(5, abc)
			expect(6, ac)
		}
	}
	e.sequence(before...)
	e.fence(8)
	e.abortedWrite() // a zombie's transaction after the fence: the import must not wait for it
	e.sequenceTo(generation.Topics(e.topics, 2).Sequenced, 8, after...)
	got.expect(t, want)

	got.mu.Lock()
	defer got.mu.Unlock()
	for gc, seqs := range got.seqs {
		seen := map[uint64]bool{}
		var firsts []uint64
		for _, s := range seqs {
			if !seen[s] {
				seen[s] = true
				firsts = append(firsts, s)
			}
		}
		for i := 1; i < len(firsts); i++ {
			if firsts[i] < firsts[i-1] {
				t.Errorf("%s: seq %d first arrived after seq %d (%v)", gc, firsts[i], firsts[i-1], seqs)
			}
		}
	}
}
