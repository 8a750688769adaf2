package gateway

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestAdmissionRefusesWhileEntriesStayLate: a steady load whose entries
// come back 800 ms late window after window is throttled, with a hint of
// about the delay; once they come back on time, the whole load goes in
// again.
func TestAdmissionRefusesWhileEntriesStayLate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	// window runs one window of the load, 100 sends 2.5 ms apart, whose
	// entries come back delay late; it returns how many were admitted and
	// the last hint.
	w := 0
	window := func(delay time.Duration) (admitted int, hint time.Duration) {
		start := t0.Add(time.Duration(w) * admissionWindow)
		w++
		for i := range 100 {
			at := start.Add(time.Duration(i) * admissionWindow / 100)
			if ok, retry := a.admit(at); ok {
				admitted++
				a.accepted(0, at)
			} else {
				hint = retry
			}
			a.entry(delay, at)
		}
		return admitted, hint
	}
	var admitted int
	var hint time.Duration
	for range 6 {
		admitted, hint = window(800 * time.Millisecond)
	}
	if admitted == 100 {
		t.Fatal("the whole load admitted while entries stay 800 ms late")
	}
	if hint < 500*time.Millisecond || hint > time.Second {
		t.Fatalf("retry after %v, want about the delay (800 ms)", hint)
	}
	for range 20 {
		admitted, _ = window(20 * time.Millisecond)
	}
	if admitted != 100 {
		t.Fatalf("%d of 100 sends admitted after 20 windows of entries on time", admitted)
	}
}

// TestAdmissionAdmitsThroughAnOutage: while nothing comes back (a broker
// fault) sends are admitted, the broker keeps them; nor does the backlog
// coming back late refuse or cut the rate, so that the clients' resends
// go in at once.
func TestAdmissionAdmitsThroughAnOutage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	now := t0
	for ; now.Before(t0.Add(10 * time.Second)); now = now.Add(10 * time.Millisecond) {
		if ok, _ := a.admit(now); !ok {
			t.Fatalf("refused %v into an outage", now.Sub(t0))
		}
		a.accepted(0, now)
	}
	// The backlog comes back over four windows, its delay rising as the
	// partitions come back one by one, while the load goes on: more comes
	// back than is sent.
	for w := range 4 {
		for range 25 {
			if ok, _ := a.admit(now); !ok {
				t.Fatalf("refused while the backlog of an outage comes back (window %d)", w)
			}
			a.accepted(0, now)
			delays := make([]time.Duration, 10)
			for j := range delays {
				delays[j] = time.Duration(7+w)*time.Second + time.Duration(j)*10*time.Millisecond
			}
			a.entries(delays, len(delays), now)
			now = now.Add(admissionWindow / 25)
		}
	}
	for i := range 100 {
		a.entry(20*time.Millisecond, now.Add(time.Duration(i)*time.Millisecond))
	}
	now = now.Add(admissionWindow)
	for i := range 100 {
		if ok, _ := a.admit(now); !ok {
			t.Fatalf("send %d of the resends refused once the backlog was out", i)
		}
		a.accepted(0, now)
	}
}

// TestAdmissionCutsTheRateWhileTheDelayGrows: past capacity the delay
// stays over the limit and grows; the admitted rate is cut, so that once
// entries are on time again a burst is not let in whole.
func TestAdmissionCutsTheRateWhileTheDelayGrows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	now := t0
	for w, delay := range []time.Duration{600, 650, 700, 750, 800} {
		for i := range 100 {
			at := now.Add(time.Duration(i) * time.Millisecond)
			a.accepted(0, at)
			a.entry(delay*time.Millisecond, at)
		}
		now = t0.Add(time.Duration(w+1) * admissionWindow)
	}
	for i := range 100 { // on time again, the load still coming
		at := now.Add(time.Duration(i) * time.Millisecond)
		if ok, _ := a.admit(at); ok {
			a.accepted(0, at)
		}
		a.entry(20*time.Millisecond, at)
	}
	now = now.Add(admissionWindow)
	admitted := 0
	for range 100 {
		if ok, _ := a.admit(now); ok {
			admitted++
			a.accepted(0, now)
		}
	}
	if admitted > 50 {
		t.Fatalf("%d of a burst of 100 admitted right after the delay grew past the limit for five windows", admitted)
	}
	if admitted == 0 {
		t.Fatal("nothing admitted once entries are on time again")
	}
}

// TestAdmissionLetsADrainThrough: the rate cut as an outage ended (late
// entries, the delay rising, little back yet) must come up once the
// backlog drains faster than the clients send, though the delay is still
// over the limit: the pipeline shows it has the capacity.
func TestAdmissionLetsADrainThrough(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	at := func(w, i int) time.Time {
		return t0.Add(time.Duration(w)*admissionWindow + time.Duration(i)*time.Millisecond)
	}
	for w := range 4 { // the outage's end: 60 sends/s taken, nothing back
		for i := range 15 {
			a.accepted(0, at(w, i))
			a.entry(2*time.Second+time.Duration(w)*100*time.Millisecond, at(w, i))
		}
	}
	refused := 0
	for w := 4; w < 12; w++ { // the drain: 300/s back, 100/s asked
		delays := make([]time.Duration, 75)
		for i := range delays {
			delays[i] = 2*time.Second + time.Duration(w)*100*time.Millisecond
		}
		a.entries(delays, 75, at(w, 0))
		for i := range 25 {
			if ok, _ := a.admit(at(w, 5+i*9)); ok {
				a.accepted(0, at(w, 5+i*9))
			} else if w >= 8 {
				refused++
			}
		}
	}
	if refused > 0 {
		t.Fatalf("%d of 100 sends refused in the drain's second second, with 300 sends/s coming back", refused)
	}
}

// TestAdmissionLeavesASlowPipelineAlone: a pipeline that is slow (each
// send back 700-900 ms later, over the limit) but keeps up with the load
// (20 sends/s, irregular; what is sent comes back) is not refused:
// refusing would not make it faster, only add the clients' backoff.
func TestAdmissionLeavesASlowPipelineAlone(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	rnd := rand.New(rand.NewPCG(1, 2)) // the same irregular load every run
	var back []time.Time               // when each accepted send comes back, in order
	for at := t0; at.Before(t0.Add(20 * time.Second)); at = at.Add(time.Duration(rnd.IntN(100)) * time.Millisecond) {
		n := 0
		for n < len(back) && !back[n].After(at) {
			n++
		}
		if n > 0 {
			delays := make([]time.Duration, n)
			for i := range delays {
				delays[i] = 800 * time.Millisecond
			}
			a.entries(delays, n, at)
			back = back[n:]
		}
		if ok, _ := a.admit(at); !ok {
			t.Fatalf("refused %v into a load the pipeline keeps up with", at.Sub(t0))
		}
		a.accepted(0, at)
		back = append(back, at.Add(700*time.Millisecond+time.Duration(rnd.IntN(200))*time.Millisecond))
		slices.SortFunc(back, time.Time.Compare)
	}
}

func TestAdmissionOff(t *testing.T) {
	a := newAdmission(0, time.Unix(1000, 0))
	a.accepted(0, time.Unix(1000, 0))
	if ok, _ := a.admit(time.Unix(2000, 0)); !ok {
		t.Fatal("refused with admission off")
	}
}

// TestAdmissionGrowsBackUnderTheLimit: once a cut rate meets a pipeline
// that keeps up, only slower than usual (a broker just restarted ran at
// 0.35-0.55 s against the 0.5 s limit for a minute), the rate grows back
// to what clients ask. Between half the limit and the limit it never did:
// after a broker restart 400 sends/s were refused for 70 s (88,034
// refusals) while the pipeline kept up.
func TestAdmissionGrowsBackUnderTheLimit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newAdmission(500*time.Millisecond, t0)
	now := t0
	for w, delay := range []time.Duration{600, 650, 700, 750, 800} { // cut
		for i := range 100 {
			at := now.Add(time.Duration(i) * time.Millisecond)
			a.accepted(0, at)
			a.entry(delay*time.Millisecond, at)
		}
		now = t0.Add(time.Duration(w+1) * admissionWindow)
	}
	if math.IsInf(a.admitted(now), 1) {
		t.Fatal("no rate cut while the delay grew past the limit")
	}
	asked, admitted := 0, 0
	var back []int      // sends accepted a window ago: they come back now
	for w := range 80 { // 20 s at 400 sends/s asked, back a window later at 0.29-0.33 s
		start := now.Add(time.Duration(w) * admissionWindow)
		delays := make([]time.Duration, len(back))
		for i := range delays {
			delays[i] = 290*time.Millisecond + time.Duration((w+i)%5)*10*time.Millisecond
		}
		a.entries(delays, len(delays), start)
		back = back[:0]
		for i := range 100 {
			at := start.Add(time.Duration(i*2) * time.Millisecond)
			ok, _ := a.admit(at)
			if ok {
				a.accepted(0, at)
				back = append(back, i)
			}
			if w >= 60 {
				asked++
				if ok {
					admitted++
				}
			}
		}
	}
	if admitted < asked*95/100 {
		t.Fatalf("%d of %d sends admitted in the last 5 s of 20 s with the delay under the limit (rate now %.0f/s)", admitted, asked, a.admitted(now.Add(80*admissionWindow)))
	}
}

// TestAdmissionDoesNotCountAnOutagesBacklogAsDemand: as a broker returns,
// the sends held through its restart are all acknowledged at once (each
// after waiting seconds) while their entries come back late and few: not
// new demand, so the rate is not cut; sends acknowledged at once in the
// same pattern are, and cut it.
func TestAdmissionDoesNotCountAnOutagesBacklogAsDemand(t *testing.T) {
	for _, tc := range []struct {
		waited  time.Duration
		wantCut bool
	}{{waited: 8 * time.Second, wantCut: false}, {waited: 5 * time.Millisecond, wantCut: true}} {
		t0 := time.Unix(1000, 0)
		a := newAdmission(time.Second, t0)
		for w := range 8 { // 400 acknowledged a second, 40 back, 2 s late and later
			for i := range 100 {
				at := t0.Add(time.Duration(w)*admissionWindow + time.Duration(i)*time.Millisecond)
				a.accepted(tc.waited, at)
				if i%10 == 0 {
					a.entries([]time.Duration{2*time.Second + time.Duration(w)*100*time.Millisecond}, 1, at)
				}
			}
		}
		rate := a.admitted(t0.Add(8 * admissionWindow))
		if cut := !math.IsInf(rate, 1); cut != tc.wantCut {
			t.Errorf("sends acknowledged after %v: admitted rate %v, want cut %v", tc.waited, rate, tc.wantCut)
		}
	}
}
