package loadgen

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Anomaly kinds the Verifier counts.
const (
	// AnomalyGap: a device got a seq more than one past the highest it had
	// seen in that conversation (I1, I5).
	AnomalyGap = "gap"
	// AnomalyDuplicate: a device got a (conversation, seq) twice (I5).
	AnomalyDuplicate = "duplicate"
	// AnomalyReorder: a device got a seq below the highest it had seen,
	// not seen before (I5).
	AnomalyReorder = "reorder"
	// AnomalySeqConflict: one client_msg_id was seen with two seqs (I3).
	AnomalySeqConflict = "seq_conflict"
	// AnomalyDivergent: two devices saw different messages at the same
	// (conversation, seq) (I1: one log per conversation).
	AnomalyDivergent = "divergent"
	// AnomalySenderOrder: a device's sends to one conversation got seqs
	// out of client_seq order (I2).
	AnomalySenderOrder = "sender_order"
	// AnomalyLost: an accepted send never reached a member device (I5,
	// I6); counted per (send, device).
	AnomalyLost = "lost"
	// AnomalyRejectedDelivered: a send answered rejected or error was
	// delivered anyway (a rejection consumes no seq).
	AnomalyRejectedDelivered = "rejected_delivered"
	// AnomalyUnanswered: a send got neither accepted, rejected nor error.
	AnomalyUnanswered = "unanswered"
)

// Outcome is the gateway's answer to a send.
type Outcome int

// Outcomes; OutcomeNone is no answer yet.
const (
	OutcomeNone Outcome = iota
	OutcomeAccepted
	OutcomeRejected
	OutcomeError
)

// maxExamples bounds the anomaly descriptions kept.
const maxExamples = 50

// Verifier checks every arrival against the guarantees. Register the
// conversations, report sends, answers and arrivals as they happen (from
// any goroutine), then call Finish once everything has been waited for.
type Verifier struct {
	mu       sync.Mutex
	members  map[string][]string // conversation -> member devices
	views    map[viewKey]*view
	sends    map[string]*sendRecord // client_msg_id -> the send
	seqOf    map[string]uint64      // client_msg_id -> first seq seen (I3)
	cmidAt   map[convSeq]string     // (conversation, seq) -> first client_msg_id seen
	counts   map[string]int
	examples []string
}

type viewKey struct{ device, conv string }

// view is what one device saw of one conversation.
type view struct {
	highest uint64
	seen    map[uint64]bool
	cmids   map[string]bool
}

type convSeq struct {
	conv string
	seq  uint64
}

type sendRecord struct {
	Send
	outcome Outcome
}

// Send is one send as the generator made it.
type Send struct {
	Device      string
	Conv        string
	ClientMsgID string
	ClientSeq   uint64
}

// NewVerifier returns an empty verifier.
func NewVerifier() *Verifier {
	return &Verifier{members: map[string][]string{}, views: map[viewKey]*view{}, sends: map[string]*sendRecord{},
		seqOf: map[string]uint64{}, cmidAt: map[convSeq]string{}, counts: map[string]int{}}
}

// AddConversation declares conv and the devices that must get every
// message of it.
func (v *Verifier) AddConversation(conv string, devices []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.members[conv] = slices.Clone(devices)
}

// Sent records a send before it is written.
func (v *Verifier) Sent(s Send) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sends[s.ClientMsgID] = &sendRecord{Send: s}
}

// Answered records the gateway's answer to the send with client_msg_id
// cmid; the first answer counts.
func (v *Verifier) Answered(cmid string, o Outcome) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.sends[cmid]; s != nil && s.outcome == OutcomeNone {
		s.outcome = o
	}
}

// Arrived records a msg frame of conv with seq and cmid (empty when the
// entry has none) at device.
func (v *Verifier) Arrived(device, conv string, seq uint64, cmid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := viewKey{device, conv}
	vw := v.views[k]
	if vw == nil {
		vw = &view{seen: map[uint64]bool{}, cmids: map[string]bool{}}
		v.views[k] = vw
	}
	switch {
	case vw.seen[seq]:
		v.report(AnomalyDuplicate, "%s got %s seq %d again", device, conv, seq)
	case seq < vw.highest:
		v.report(AnomalyReorder, "%s got %s seq %d after seq %d", device, conv, seq, vw.highest)
	case seq > vw.highest+1:
		v.report(AnomalyGap, "%s got %s seq %d after seq %d", device, conv, seq, vw.highest)
	}
	vw.seen[seq] = true
	vw.highest = max(vw.highest, seq)
	if cmid == "" {
		return
	}
	vw.cmids[cmid] = true
	if first, ok := v.seqOf[cmid]; !ok {
		v.seqOf[cmid] = seq
	} else if first != seq {
		v.report(AnomalySeqConflict, "client_msg_id %s has seq %d and seq %d (seen by %s)", cmid, first, seq, device)
	}
	cs := convSeq{conv, seq}
	if first, ok := v.cmidAt[cs]; !ok {
		v.cmidAt[cs] = cmid
	} else if first != cmid {
		v.report(AnomalyDivergent, "%s seq %d is %s for one device and %s for %s", conv, seq, first, cmid, device)
	}
}

// report counts an anomaly and keeps its description while there are few;
// v.mu is held.
func (v *Verifier) report(kind, format string, a ...any) {
	v.counts[kind]++
	if len(v.examples) < maxExamples {
		v.examples = append(v.examples, kind+": "+fmt.Sprintf(format, a...))
	}
}

// SeqOf is the seq the message with client_msg_id cmid was first seen
// with (zero: never seen).
func (v *Verifier) SeqOf(cmid string) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seqOf[cmid]
}

// Finish checks what can only be checked at the end (losses, sender order,
// unanswered sends) and returns the anomaly counts by kind (only kinds
// that occurred) and up to 50 descriptions. Call it once.
func (v *Verifier) Finish() (counts map[string]int, examples []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cmids := make([]string, 0, len(v.sends))
	for cmid := range v.sends {
		cmids = append(cmids, cmid)
	}
	sort.Strings(cmids) // deterministic examples
	type stream struct{ device, conv string }
	bySender := map[stream][]*sendRecord{}
	for _, cmid := range cmids {
		s := v.sends[cmid]
		_, delivered := v.seqOf[cmid]
		switch s.outcome {
		case OutcomeNone:
			v.report(AnomalyUnanswered, "%s to %s (client_seq %d) got no answer", cmid, s.Conv, s.ClientSeq)
		case OutcomeRejected, OutcomeError:
			if delivered {
				v.report(AnomalyRejectedDelivered, "%s was refused but delivered as %s seq %d", cmid, s.Conv, v.seqOf[cmid])
			}
			continue
		}
		if s.outcome == OutcomeAccepted || delivered {
			for _, d := range v.members[s.Conv] {
				if vw := v.views[viewKey{d, s.Conv}]; vw == nil || !vw.cmids[cmid] {
					v.report(AnomalyLost, "%s (accepted in %s) never reached %s", cmid, s.Conv, d)
				}
			}
		}
		if delivered {
			k := stream{s.Device, s.Conv}
			bySender[k] = append(bySender[k], s)
		}
	}
	streams := make([]stream, 0, len(bySender))
	for k := range bySender {
		streams = append(streams, k)
	}
	sort.Slice(streams, func(i, j int) bool {
		return streams[i].device+"\x00"+streams[i].conv < streams[j].device+"\x00"+streams[j].conv
	})
	for _, k := range streams {
		ss := bySender[k]
		sort.Slice(ss, func(i, j int) bool { return ss[i].ClientSeq < ss[j].ClientSeq })
		for i := 1; i < len(ss); i++ {
			if a, b := v.seqOf[ss[i-1].ClientMsgID], v.seqOf[ss[i].ClientMsgID]; b <= a {
				v.report(AnomalySenderOrder, "%s in %s: client_seq %d got seq %d, client_seq %d got seq %d",
					k.device, k.conv, ss[i-1].ClientSeq, a, ss[i].ClientSeq, b)
			}
		}
	}
	counts = make(map[string]int, len(v.counts))
	for k, n := range v.counts {
		counts[k] = n
	}
	return counts, slices.Clone(v.examples)
}
