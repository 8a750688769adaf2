package gateway

import (
	"testing"
	"time"
)

func TestAdmissionRefusesWhileEntriesComeBackLate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	if ok, _ := a.admit(t0); !ok {
		t.Fatal("refused with nothing measured")
	}
	// A window of entries 800 ms behind: the next window refuses.
	for i := range 100 {
		a.entry(800*time.Millisecond, t0.Add(time.Duration(i)*time.Millisecond))
	}
	at := t0.Add(admissionWindow + time.Millisecond)
	ok, retry := a.admit(at)
	if ok {
		t.Fatal("admitted while entries arrive 800 ms late")
	}
	if retry < 500*time.Millisecond || retry > time.Second {
		t.Fatalf("retry after %v, want about the delay (800 ms)", retry)
	}
	// Entries on time again: admitted after the next window.
	for i := range 100 {
		a.entry(20*time.Millisecond, at.Add(time.Duration(i)*time.Millisecond))
	}
	if ok, _ := a.admit(at.Add(admissionWindow + time.Millisecond)); !ok {
		t.Fatal("still refusing once entries arrive on time")
	}
}

func TestAdmissionRefusesWhenNothingComesBack(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	a.accepted(t0)
	if ok, _ := a.admit(t0.Add(400 * time.Millisecond)); !ok {
		t.Fatal("refused before the limit")
	}
	admitted := 0 // past the limit one send may probe the stall, no more
	for range 10 {
		if ok, _ := a.admit(t0.Add(600 * time.Millisecond)); ok {
			admitted++
		}
	}
	if admitted > 1 {
		t.Fatalf("%d of 10 sends admitted although nothing came back for 600 ms after a send", admitted)
	}
	a.entry(10*time.Millisecond, t0.Add(700*time.Millisecond))
	if ok, _ := a.admit(t0.Add(710 * time.Millisecond)); !ok {
		t.Fatal("still refusing after an entry came back")
	}
}

// TestAdmissionForgetsSendsThatLanded: a send whose sender left (its
// entry will never be written here) must not keep the gateway refusing.
func TestAdmissionForgetsSendsThatLanded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	a.accepted(t0)
	a.landed(1, t0) // the sender's connection closed
	if ok, _ := a.admit(t0.Add(time.Minute)); !ok {
		t.Fatal("refusing a minute later for a send that is no longer in flight")
	}
}

func TestAdmissionQuietPipelineAdmits(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	for i := range 10 {
		a.entry(900*time.Millisecond, t0.Add(time.Duration(i)*time.Millisecond))
	}
	// Nothing arrives for two windows and nothing was accepted: the
	// backlog is gone, sends are admitted again.
	if ok, _ := a.admit(t0.Add(3 * admissionWindow)); !ok {
		t.Fatal("a quiet pipeline keeps refusing")
	}
}

func TestAdmissionOff(t *testing.T) {
	a := newAdmission(0, time.Unix(1000, 0))
	a.accepted(time.Unix(1000, 0))
	if ok, _ := a.admit(time.Unix(2000, 0)); !ok {
		t.Fatal("refused with admission off")
	}
}

// TestAdmissionStallWithoutSendsKeepsTheRate: a stall seen while nothing
// is being sent (a send from before it still in flight) must not throttle
// the load that follows once the pipeline answers again.
func TestAdmissionStallWithoutSendsKeepsTheRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	a.accepted(t0)
	a.delay(t0.Add(300 * time.Millisecond)) // the window of the send: nothing back yet
	if d := a.delay(t0.Add(1300 * time.Millisecond)); d < time.Second {
		t.Fatalf("delay %v after a second of silence with a send in flight", d)
	}
	a.entry(1300*time.Millisecond, t0.Add(1300*time.Millisecond))
	a.landed(1, t0.Add(1300*time.Millisecond))
	now := t0.Add(1400 * time.Millisecond)
	for i := range 100 {
		if ok, _ := a.admit(now); !ok {
			t.Fatalf("send %d of a burst refused after the pipeline answered again", i)
		}
		a.accepted(now)
	}
}

// TestAdmissionProbesAStall: a send whose entry can never reach this
// gateway (it stays in flight) must not keep it refusing: a probe goes
// through, and once its entry comes back, sends are admitted again.
func TestAdmissionProbesAStall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	a.accepted(t0) // never lands
	later := t0.Add(time.Minute)
	ok, _ := a.admit(later)
	if !ok {
		t.Fatal("no probe through a stall of a minute")
	}
	a.accepted(later)
	a.entry(20*time.Millisecond, later.Add(20*time.Millisecond))
	a.landed(1, later.Add(20*time.Millisecond))
	for i := range 100 {
		now := later.Add(30*time.Millisecond + time.Duration(i)*time.Millisecond)
		if ok, _ := a.admit(now); !ok {
			t.Fatalf("send %d refused after the probe came back", i)
		}
		a.accepted(now)
		a.entry(20*time.Millisecond, now)
	}
}

// TestAdmissionStallDoesNotCutTheRate: an outage (nothing comes back, one
// probe every stallProbe) refuses sends but leaves the rate alone, so that
// once the pipeline answers again the clients' resends go in at once
// (cut to the lowest rate, they trickled in for minutes after a broker
// restart).
func TestAdmissionStallDoesNotCutTheRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	a.accepted(t0)
	now := t0
	for ; now.Before(t0.Add(5 * time.Second)); now = now.Add(admissionWindow) {
		if ok, _ := a.admit(now); ok && now.After(t0) {
			a.accepted(now) // a probe
		}
	}
	a.entry(20*time.Millisecond, now)
	a.landed(a.inFlight, now)
	now = now.Add(10 * time.Millisecond)
	for i := range 100 {
		if ok, _ := a.admit(now); !ok {
			t.Fatalf("send %d of the resends refused once the pipeline answered again", i)
		}
		a.accepted(now)
	}
}
