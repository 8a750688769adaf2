package gateway

import "testing"

func TestSendOrderHoldsBackSendsAfterAFailure(t *testing.T) {
	var o sendOrder
	step := func(conv string, cs uint64, want bool) {
		t.Helper()
		if got := o.admit(conv, cs); got != want {
			t.Fatalf("admit(%s, %d) = %v, want %v", conv, cs, got, want)
		}
	}
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
	step("g:a", 3, true)
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
