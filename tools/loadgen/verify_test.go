package loadgen

import (
	"fmt"
	"maps"
	"testing"
)

// arrival is one msg frame at a device, for the verifier tests.
type arrival struct {
	device string
	seq    uint64
	cmid   string
}

// cleanRun is a dm between a and b: a sends m1, m2; b sends m3, in that
// seq order, every send accepted.
func cleanRun() (sends []Send, arrivals []arrival) {
	sends = []Send{
		{Device: "a", Conv: "dm:a:b", ClientMsgID: "m1", ClientSeq: 1},
		{Device: "a", Conv: "dm:a:b", ClientMsgID: "m2", ClientSeq: 2},
		{Device: "b", Conv: "dm:a:b", ClientMsgID: "m3", ClientSeq: 1},
	}
	for _, d := range []string{"a", "b"} {
		arrivals = append(arrivals, arrival{d, 1, "m1"}, arrival{d, 2, "m2"}, arrival{d, 3, "m3"})
	}
	return sends, arrivals
}

func TestVerifier(t *testing.T) {
	tests := []struct {
		name string
		// edit changes the clean run; answers overrides outcomes by cmid.
		edit    func(sends []Send, arrivals []arrival) ([]Send, []arrival)
		answers map[string]Outcome
		want    map[string]int
	}{
		{name: "clean", edit: nil, want: map[string]int{}},
		{name: "gap", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			// b never gets seq 2: a gap at seq 3, and m2 lost at b.
			return s, append(a[:3:3], arrival{"b", 1, "m1"}, arrival{"b", 3, "m3"})
		}, want: map[string]int{AnomalyGap: 1, AnomalyLost: 1}},
		{name: "duplicate", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			return s, append(a, arrival{"b", 2, "m2"})
		}, want: map[string]int{AnomalyDuplicate: 1}},
		{name: "reorder", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			a[4], a[5] = a[5], a[4] // b sees 1, 3, 2
			return s, a
		}, want: map[string]int{AnomalyGap: 1, AnomalyReorder: 1}},
		{name: "lost at one device", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			return s, a[:5] // b never gets seq 3: no gap visible, but lost
		}, want: map[string]int{AnomalyLost: 1}},
		{name: "lost everywhere", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			s = append(s, Send{Device: "b", Conv: "dm:a:b", ClientMsgID: "m4", ClientSeq: 2})
			return s, a
		}, want: map[string]int{AnomalyLost: 2}},
		{name: "one client_msg_id, two seqs", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			return s, append(a, arrival{"a", 4, "m3"}, arrival{"b", 4, "m3"})
		}, want: map[string]int{AnomalySeqConflict: 2}},
		{name: "devices disagree on a seq", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			a[4].cmid, a[5].cmid = "m3", "m2" // b sees m3 at seq 2, m2 at seq 3
			return s, a
		}, want: map[string]int{AnomalySeqConflict: 2, AnomalyDivergent: 2}},
		{name: "sender order broken", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			// m2 (client_seq 2) sequenced before m1 (client_seq 1), seen so by both.
			for i := range a {
				switch a[i].cmid {
				case "m1":
					a[i].cmid = "m2"
				case "m2":
					a[i].cmid = "m1"
				}
			}
			return s, a
		}, want: map[string]int{AnomalySenderOrder: 1}},
		{name: "rejected and not delivered is fine", edit: func(s []Send, a []arrival) ([]Send, []arrival) {
			return append(s, Send{Device: "a", Conv: "dm:a:b", ClientMsgID: "m9", ClientSeq: 3}), a
		}, answers: map[string]Outcome{"m9": OutcomeRejected}, want: map[string]int{}},
		{name: "rejected but delivered", edit: nil, answers: map[string]Outcome{"m3": OutcomeError},
			want: map[string]int{AnomalyRejectedDelivered: 1}},
		{name: "unanswered", edit: nil, answers: map[string]Outcome{"m1": OutcomeNone},
			want: map[string]int{AnomalyUnanswered: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sends, arrivals := cleanRun()
			if tt.edit != nil {
				sends, arrivals = tt.edit(sends, arrivals)
			}
			v := NewVerifier()
			v.AddConversation("dm:a:b", []string{"a", "b"})
			for _, s := range sends {
				v.Sent(s)
				o, ok := tt.answers[s.ClientMsgID]
				if !ok {
					o = OutcomeAccepted
				}
				if o != OutcomeNone {
					v.Answered(s.ClientMsgID, o)
				}
			}
			for _, a := range arrivals {
				v.Arrived(a.device, "dm:a:b", a.seq, a.cmid)
			}
			got, examples := v.Finish()
			if !maps.Equal(got, tt.want) {
				t.Errorf("anomalies %v, want %v; examples:\n%s", got, tt.want, fmt.Sprintln(examples))
			}
			n := 0
			for _, c := range got {
				n += c
			}
			if len(examples) != n {
				t.Errorf("%d examples for %d anomalies: %q", len(examples), n, examples)
			}
		})
	}
}

func TestVerifierKeepsFirstAnswer(t *testing.T) {
	v := NewVerifier()
	v.AddConversation("g:x", []string{"a"})
	v.Sent(Send{Device: "a", Conv: "g:x", ClientMsgID: "m1", ClientSeq: 1})
	v.Answered("m1", OutcomeAccepted)
	v.Answered("m1", OutcomeError) // a later error about the same id does not undo the acceptance
	v.Arrived("a", "g:x", 1, "m1")
	if got, _ := v.Finish(); len(got) != 0 {
		t.Errorf("anomalies %v, want none", got)
	}
}
