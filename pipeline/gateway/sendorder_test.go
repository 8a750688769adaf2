package gateway

import "testing"

func admitStep(t *testing.T, o *sendOrder) func(conv string, cs uint64, want bool) {
	return func(conv string, cs uint64, want bool) {
		t.Helper()
		if got, _ := o.admit(conv, cs); got != want {
			t.Fatalf("admit(%s, %d) = %v, want %v", conv, cs, got, want)
		}
	}
}

func TestSendOrderHoldsBackSendsAfterAFailure(t *testing.T) {
	var o sendOrder
	step := admitStep(t, &o)
	step("g:a", 1, true)
	o.accept("g:a", 1)
	step("g:a", 2, true)
	o.failed("g:a", 2)
	step("g:a", 3, false) // would overtake 2
	step("g:b", 9, true)  // other conversations are not held back
	step("g:a", 0, true)  // no order asked
	o.failed("g:a", 0)    // and none recorded
	step("g:a", 2, true)  // the retry
	o.failed("g:a", 2)    // fails again
	step("g:a", 3, false) // still held back
	step("g:a", 2, true)
	o.accept("g:a", 2)
	step("g:a", 3, true) // the refused 3 is next
	o.accept("g:a", 3)
	step("g:a", 4, true)

	// An earlier failure lowers the barrier; accepting a later send does
	// not lift it.
	o.failed("g:a", 7)
	o.failed("g:a", 5)
	step("g:a", 6, false)
	o.accept("g:a", 7)
	step("g:a", 6, false)
	o.accept("g:a", 5)
	step("g:a", 6, true)

	// A repeat of an accepted send that fails (the client resent it before
	// its answer came) holds nothing back: the client will not resend it.
	o.accept("g:a", 6)
	o.failed("g:a", 6)
	step("g:a", 8, true)
}

// TestSendOrderNewSendWaitsForEveryRefusedOne is the sender_order of the
// 2,000 sends/s benchmark: 234 was rate limited and 308..332 refused behind
// it; the client resent 234 (accepted) and 308..311, but 312..332 were not
// due yet when its next new send, 333, came. 333 must wait for them.
func TestSendOrderNewSendWaitsForEveryRefusedOne(t *testing.T) {
	var o sendOrder
	step := admitStep(t, &o)
	o.accept("dm:a:b", 233)
	step("dm:a:b", 234, true)
	o.failed("dm:a:b", 234) // rate_limited
	for cs := uint64(308); cs <= 332; cs++ {
		step("dm:a:b", cs, false) // unavailable: behind 234
	}
	step("dm:a:b", 234, true)
	o.accept("dm:a:b", 234)
	for cs := uint64(308); cs <= 311; cs++ {
		step("dm:a:b", cs, true)
		o.accept("dm:a:b", cs)
	}
	step("dm:a:b", 333, false) // 312..332 were refused and not resent yet
	for cs := uint64(312); cs <= 333; cs++ {
		step("dm:a:b", cs, true)
		o.accept("dm:a:b", cs)
	}
	step("dm:a:b", 334, true)
}

// TestSendOrderResentBurstGoesThroughAtOnce: sends are answered after the
// broker's acknowledgement, so a client's resent burst arrives while the
// first of it is still in flight. Each resend is ahead of the next in the
// producer, so the whole burst is admitted at once (waiting for each
// acknowledgement let it through one send per retry round, and a minute
// was not enough to drain a reconnect's backlog); a resend that fails
// again holds back the new sends behind it.
func TestSendOrderResentBurstGoesThroughAtOnce(t *testing.T) {
	var o sendOrder
	step := admitStep(t, &o)
	o.accept("g:a", 30)
	o.failed("g:a", 31) // unavailable
	for cs := uint64(32); cs <= 34; cs++ {
		step("g:a", cs, false) // behind 31
	}
	for cs := uint64(31); cs <= 34; cs++ {
		step("g:a", cs, true) // the resent burst, in order
	}
	o.accept("g:a", 31)
	o.failed("g:a", 32) // the broker did not take it
	o.accept("g:a", 33)
	o.accept("g:a", 34)
	step("g:a", 35, false) // 32 must be resent first
	step("g:a", 32, true)
	step("g:a", 35, true) // behind the resent 32
	o.accept("g:a", 32)
	o.accept("g:a", 35)
	step("g:a", 36, true)
	if len(o.refused) != 0 {
		t.Fatalf("refused %v after every send was accepted", o.refused)
	}

	// A resend out of order does not open the way for the sends after an
	// earlier refused one.
	o.failed("g:a", 40)
	o.failed("g:a", 41)
	step("g:a", 41, false) // 40 first
	step("g:a", 40, true)
	step("g:a", 41, true)
}

func TestSendOrderIsBounded(t *testing.T) {
	var o sendOrder
	o.failed("g:a", 1)
	for cs := uint64(2); cs <= maxRefusedPerConversation; cs++ {
		if ok, full := o.admit("g:a", cs); ok || full {
			t.Fatalf("admit(%d) = %v, %v before the bound", cs, ok, full)
		}
	}
	if ok, full := o.admit("g:a", maxRefusedPerConversation+1); ok || !full {
		t.Fatalf("past the bound: admit = %v, full %v", ok, full)
	}
}
