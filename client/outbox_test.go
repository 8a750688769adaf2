package client

import (
	"fmt"
	"testing"
	"time"
)

func cmids(ps []*pending) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.cmid
	}
	return out
}

// A refused send holds its conversation's later sends behind it (I2):
// they go again together, in the order they were made, after its wait.
func TestOutboxRefusedSendHoldsItsConversation(t *testing.T) {
	o := newOutbox(5 * time.Second)
	now := time.Unix(1000, 0)
	for _, id := range []string{"a1", "a2", "b1"} {
		o.add(&pending{conv: id[:1], cmid: id}, now)
	}
	if got := cmids(o.due(now, false)); fmt.Sprint(got) != "[a1 a2 b1]" {
		t.Fatalf("first writes %v", got)
	}
	if !o.refused("a1", "unavailable", 200*time.Millisecond, now) || !o.refused("a2", "unavailable", 0, now) {
		t.Fatal("refusals of pending sends not taken")
	}
	o.add(&pending{conv: "a", cmid: "a3"}, now)
	if got := o.due(now.Add(100*time.Millisecond), false); len(got) != 0 {
		t.Fatalf("written before the refused one's wait: %v", cmids(got))
	}
	later := now.Add(time.Second) // past the hint and its jitter
	if got := cmids(o.due(later, false)); fmt.Sprint(got) != "[a1 a2 a3]" {
		t.Fatalf("after the wait: %v, want a1 a2 a3 in order", got)
	}
	if !o.settle("a1") || o.settle("a1") {
		t.Fatal("settle a1: want true once")
	}
	// A new connection writes every unsettled send again, in order.
	if got := cmids(o.due(later, true)); fmt.Sprint(got) != "[a2 b1 a3]" {
		t.Fatalf("on a new connection: %v", got)
	}
}

// Refused again and again, a conversation backs off further each round,
// up to the cap.
func TestOutboxBacksOffPerConversation(t *testing.T) {
	o := newOutbox(2 * time.Second)
	now := time.Unix(1000, 0)
	o.add(&pending{conv: "a", cmid: "a1"}, now)
	var waits []time.Duration
	for range 6 {
		o.due(now, true)
		o.refused("a1", "unavailable", 0, now)
		w := o.next().Sub(now)
		waits = append(waits, w)
		now = now.Add(w)
	}
	for i, w := range waits {
		if w > 3*time.Second { // the cap plus half of it as jitter
			t.Fatalf("round %d waited %v, past the cap", i, w)
		}
	}
	if waits[4] < 2*time.Second {
		t.Fatalf("waits %v: the fifth round should be at the cap", waits)
	}
	o.accepted("a1")
	o.due(now, true)
	o.refused("a1", "unavailable", 0, now)
	if w := o.next().Sub(now); w > 750*time.Millisecond {
		t.Fatalf("after an accepted send the wait starts again small, got %v", w)
	}
}

// A refused send whose entry comes before it is resent (it had been
// accepted on an earlier connection) is still written once, before the
// later sends of its conversation: the gateway refuses those until it is.
func TestOutboxResendsARefusedSendThatSettled(t *testing.T) {
	o := newOutbox(5 * time.Second)
	now := time.Unix(1000, 0)
	o.add(&pending{conv: "a", cmid: "a1"}, now)
	o.add(&pending{conv: "a", cmid: "a2"}, now)
	o.due(now, true)
	o.refused("a1", "unavailable", 100*time.Millisecond, now)
	o.refused("a2", "unavailable", 0, now)
	if !o.settle("a1") {
		t.Fatal("a1 was pending")
	}
	later := now.Add(time.Second)
	if got := cmids(o.due(later, false)); fmt.Sprint(got) != "[a1 a2]" {
		t.Fatalf("after the wait: %v, want a1 (settled, resent once) then a2", got)
	}
	o.refused("a1", "unavailable", 0, later) // a late answer to the resend changes nothing
	if got := cmids(o.due(later.Add(10*time.Second), true)); fmt.Sprint(got) != "[a2]" {
		t.Fatalf("on a new connection: %v, want only a2", got)
	}
}

// A send that settles while the connection still owes it an answer, and is
// then refused, is written again before the later sends of its conversation.
func TestOutboxResendsASettledSendRefusedAfterwards(t *testing.T) {
	o := newOutbox(5 * time.Second)
	now := time.Unix(1000, 0)
	o.add(&pending{conv: "a", cmid: "a1"}, now)
	o.add(&pending{conv: "a", cmid: "a2"}, now)
	o.due(now, true)
	o.settle("a1") // its entry came (accepted on an earlier connection)
	if !o.refused("a1", "unavailable", 100*time.Millisecond, now) || o.pending("a1") {
		t.Fatal("the refusal of a settled send the connection owed is taken, and it stays settled")
	}
	o.refused("a2", "unavailable", 0, now)
	if got := cmids(o.due(now.Add(time.Second), false)); fmt.Sprint(got) != "[a1 a2]" {
		t.Fatalf("after the wait: %v, want a1 then a2", got)
	}
	o.answered("a1")
	if o.refused("a1", "unavailable", 0, now) {
		t.Fatal("a send answered and settled is forgotten")
	}
}
