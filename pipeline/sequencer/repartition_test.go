package sequencer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
)

// gen is one generation of the partitioned topics in a test.
type gen struct {
	id         uint32
	partitions int32
	topics     kafkawire.Topics
}

// genLogs collects every generation's sequenced log as it is written. Its
// checks run once all are complete, over the generations in order: a
// conversation's seqs continue from one generation's log into the next.
type genLogs struct {
	gens  []gen
	mu    sync.Mutex
	msgs  [][]*sarama.ConsumerMessage // per generation; per partition in offset order
	ended []map[int32]bool
	keys  map[string]int // sender/client_msg_id -> records of any generation
	// fenceEnds: end records of fenced partitions, per generation.
	fenceEnds []int
	changed   chan struct{}
}

func followGenerations(t *testing.T, gens []gen) *genLogs {
	t.Helper()
	g := &genLogs{gens: gens, msgs: make([][]*sarama.ConsumerMessage, len(gens)), ended: make([]map[int32]bool, len(gens)),
		keys: map[string]int{}, fenceEnds: make([]int, len(gens)), changed: make(chan struct{}, 1)}
	for i, ge := range gens {
		g.ended[i] = map[int32]bool{}
		stacktest.Follow(t, ge.topics.Sequenced, ge.partitions, func(m *sarama.ConsumerMessage) { g.add(i, m) })
	}
	return g
}

func (g *genLogs) add(i int, m *sarama.ConsumerMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer func() {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}()
	switch string(m.Key) {
	case endKey:
		g.ended[i][m.Partition] = true
		return
	case generation.FenceKey: // a fenced partition's end record
		g.fenceEnds[i]++
		return
	}
	g.msgs[i] = append(g.msgs[i], m)
	r := &imv1.SequencedRecord{}
	if imv1.Unmarshal(m.Value, r) == nil { // undecodable: reported by the checks at the end
		g.keys[r.SenderUserId+"/"+r.ClientMsgId]++
	}
}

// waitFor blocks until cond holds, or fails the test after timeout.
func (g *genLogs) waitFor(t *testing.T, timeout time.Duration, what string, cond func(g *genLogs) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		ok := cond(g)
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.changed:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func (g *genLogs) records() int {
	n := 0
	for _, m := range g.msgs {
		n += len(m)
	}
	return n
}

// finish ends every generation's log (all sequencers must have stopped),
// reads up to the ends and checks I1-I4 over the generations in order.
func (g *genLogs) finish(t *testing.T) *seqLog {
	t.Helper()
	ends := map[string]int32{}
	for _, ge := range g.gens {
		ends[ge.topics.Sequenced] = ge.partitions
	}
	writeEnds(t, ends)
	g.waitFor(t, time.Minute, "the end markers", func(g *genLogs) bool {
		for i, ge := range g.gens {
			if len(g.ended[i]) != int(ge.partitions) {
				return false
			}
		}
		return true
	})
	l := &seqLog{check: sequencer.NewChecker(), outcomes: map[string][]*imv1.SequencedRecord{}, last: map[string]uint64{},
		heads: map[string]uint64{}, ended: map[int32]bool{}, headsEnded: map[int32]bool{}, changed: make(chan struct{}, 1)}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, ge := range g.gens {
		l.partitions = ge.partitions
		for _, m := range g.msgs[i] {
			l.add(m.Partition, m)
		}
	}
	if err := errors.Join(l.errs...); err != nil {
		t.Fatal(err)
	}
	if err := l.check.Err(); err != nil {
		t.Fatal(err)
	}
	return l
}

// generationsOf: for each conversation, the generations whose log has
// entries of it.
func (g *genLogs) generationsOf() map[string]map[uint32]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]map[uint32]bool{}
	for i, ge := range g.gens {
		for _, m := range g.msgs[i] {
			r := &imv1.SequencedRecord{}
			if imv1.Unmarshal(m.Value, r) != nil || r.Seq == 0 {
				continue
			}
			if out[r.ConversationId] == nil {
				out[r.ConversationId] = map[uint32]bool{}
			}
			out[r.ConversationId][ge.id] = true
		}
	}
	return out
}

// probe is one device's dm whose sends the test writes itself, to a
// chosen generation's raw topic at a chosen moment: its seqs must follow
// its client_seqs exactly, whichever generation sequenced them.
type probe struct {
	t    *testing.T
	conv string
	next uint64
	recs map[uint64]*imv1.RawRecord
}

func (p *probe) send(raw string, n int) {
	p.t.Helper()
	var msgs []kafkaMessage
	for range n {
		p.next++
		r := &imv1.RawRecord{Version: imv1.Version, ConversationId: p.conv, ClientMsgId: fmt.Sprintf("probe-%d", p.next),
			SenderUserId: "probe-a", SenderDeviceId: "d", ClientSeq: p.next, ReceivedAtMs: time.Now().UnixMilli(), Origin: "test",
			Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("probe")}}}
		p.recs[p.next] = r
		msgs = append(msgs, encodeRaw(p.t, r))
	}
	p.write(raw, msgs)
}

// resend writes client_seq cs again (a retry): it must get its seq again.
func (p *probe) resend(raw string, cs uint64) {
	p.t.Helper()
	p.write(raw, []kafkaMessage{encodeRaw(p.t, p.recs[cs])})
}

func (p *probe) write(raw string, msgs []kafkaMessage) {
	p.t.Helper()
	if err := rawProducer(p.t, raw).Write(context.Background(), msgs...); err != nil {
		p.t.Fatal(err)
	}
}

// TestRepartitionHandsOverEveryConversation repartitions 4 -> 8 -> 4 under
// steady load (groups and dms, membership changes, duplicated and swapped
// raw records): every record of every generation's log is checked (I1-I4
// across the switches), every send is sequenced exactly once, and resends
// across the switches name their original seq. The first switch fences
// first and moves the writers after (records after the fence are
// forwarded); the second moves the writers first (records wait for the
// import) and fences after.
func TestRepartitionHandsOverEveryConversation(t *testing.T) {
	base := newTopics(t, 4)
	gens := []gen{{1, 4, generation.Topics(base, 1)}, {2, 8, generation.Topics(base, 2)}, {3, 4, generation.Topics(base, 3)}}
	for _, g := range gens[1:] {
		stacktest.CreateTopics(t, generation.Specs(base, kafkawire.Layout{}, g.id, g.partitions)...)
	}
	logs := followGenerations(t, gens)
	var stops []func()
	for _, g := range gens {
		stops = append(stops, startSequencer(t, base, func(c *sequencer.Config) { c.Generation = g.id }))
	}
	k := stacktest.Kafka(t)
	fence := func(from, to gen) {
		t.Helper()
		parts := make([]int32, from.partitions)
		for p := range parts {
			parts[p] = int32(p)
		}
		if _, err := repartition.WriteFences(k, from.topics.Raw, parts, &imv1.Generation{Id: to.id, Partitions: to.partitions}); err != nil {
			t.Fatal(err)
		}
	}
	progress := func(n int) {
		t.Helper()
		logs.mu.Lock()
		target := logs.records() + n
		logs.mu.Unlock()
		logs.waitFor(t, time.Minute, fmt.Sprintf("%d more records", n), func(g *genLogs) bool { return g.records() >= target })
	}

	w := newWorkload(17, 60, 40, 40)
	var raw atomic.Pointer[string]
	raw.Store(&gens[0].topics.Raw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.send(t, func() string { return *raw.Load() }, 2, 5, 15*time.Millisecond)
	}()
	pr := &probe{t: t, conv: "dm:probe-a:probe-b", recs: map[uint64]*imv1.RawRecord{}}
	pr.send(gens[0].topics.Raw, 5) // 1-5 before the fence

	// 4 -> 8: fence, then the writers move.
	progress(500)
	start := time.Now()
	fence(gens[0], gens[1])
	pr.send(gens[0].topics.Raw, 5) // 6-10 after the fence: forwarded
	pr.resend(gens[0].topics.Raw, 3)
	raw.Store(&gens[1].topics.Raw)
	pr.send(gens[1].topics.Raw, 5) // 11-15 to the new generation
	logs.waitFor(t, time.Minute, "the probe's seq 15", func(g *genLogs) bool { return g.keys["probe-a/probe-15"] > 0 })
	t.Logf("4 -> 8: the probe's send after the switch sequenced %v after the fence", time.Since(start).Round(time.Millisecond))

	// 8 -> 4: the writers move, then fence.
	progress(500)
	start = time.Now()
	raw.Store(&gens[2].topics.Raw)
	pr.send(gens[2].topics.Raw, 5) // 16-20: wait for the import
	fence(gens[1], gens[2])
	pr.send(gens[1].topics.Raw, 5)   // 21-25 after the fence: forwarded
	pr.resend(gens[0].topics.Raw, 7) // forwarded twice
	pr.resend(gens[2].topics.Raw, 12)
	logs.waitFor(t, time.Minute, "the probe's seq 25", func(g *genLogs) bool { return g.keys["probe-a/probe-25"] > 0 })
	t.Logf("8 -> 4: the probe's sends sequenced %v after the switch", time.Since(start).Round(time.Millisecond))

	<-done
	logs.waitFor(t, 2*time.Minute, "an outcome for every send and resend", func(g *genLogs) bool {
		for _, key := range w.keys {
			if g.keys[key] == 0 {
				return false
			}
		}
		return g.keys["probe-a/probe-3"] == 2 && g.keys["probe-a/probe-7"] == 2 && g.keys["probe-a/probe-12"] == 2
	})
	for _, stop := range stops {
		stop()
	}
	l := logs.finish(t)
	verifyExactlyOnce(t, l, w)
	for i, want := range []int{4, 8, 0} { // one end record per fenced partition
		if got := logs.fenceEnds[i]; got != want {
			t.Errorf("generation %d's log has %d end records, want %d", gens[i].id, got, want)
		}
	}

	// The probe: seq = client_seq across both switches, each resend
	// answered with its original seq.
	for cs := uint64(1); cs <= pr.next; cs++ {
		key := fmt.Sprintf("probe-a/probe-%d", cs)
		entry, n := l.entryOf(key)
		if n != 1 || entry.Seq != cs {
			t.Errorf("probe send %d: %d entries, seq %d", cs, n, entry.GetSeq())
		}
	}
	for _, cs := range []uint64{3, 7, 12} {
		found := false
		for _, r := range l.outcomes[fmt.Sprintf("probe-a/probe-%d", cs)] {
			found = found || r.GetDuplicate().GetOriginalSeq() == cs
		}
		if !found {
			t.Errorf("the resend of probe send %d got no duplicate notice naming seq %d", cs, cs)
		}
	}
	spans := map[int]int{}
	for _, gs := range logs.generationsOf() {
		spans[len(gs)]++
	}
	t.Logf("conversations by the number of generations that sequenced them: %v", spans)
	if spans[3] == 0 {
		t.Error("no conversation was sequenced by all three generations: the switches did not happen under load")
	}
}
