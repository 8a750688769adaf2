package gateway

import (
	"cmp"
	"slices"
)

// maxRefusedPerConversation bounds the refused sends a connection tracks
// per conversation; a client past it is disconnected (it resends them all,
// in order, on its next connection).
const maxRefusedPerConversation = 4096

// sendOrder keeps one connection's sends of a conversation in the client's
// order when some of them fail (I2). Sends are handed to the producer in
// the client's order and answered in that order, but a send that failed
// (`unavailable`, `rate_limited`) is retried by the client later; a later
// send accepted meanwhile would take a seq before it, and once past the
// sequencer's hold window the sender's messages would swap places. So
// after a failure, later sends of that conversation are refused too, and
// every refused send is remembered: a send is admitted only once each
// refused send before it has been resent (it is then in flight ahead of
// it, and the producer keeps their order). (Remembering only the first
// failure let a new send overtake the refused ones the client had not
// resent yet: seen as sender_order at 2,000 sends/s, when rate_limited and
// unavailable answers are retried after different delays. Waiting for
// each resend's acknowledgement instead let a resent burst through one
// send per retry round.) Client sends with client_seq 0 ask for no order
// and are never held back. Not safe for concurrent use (the connection's
// reader alone uses it).
type sendOrder struct {
	refused  map[string][]refusedSend // conversation -> refused sends not accepted since, ascending
	accepted map[string]uint64        // conversation -> highest client_seq accepted here
}

// refusedSend is a refused send's client_seq; resent while the client's
// resend of it is in flight.
type refusedSend struct {
	clientSeq uint64
	resent    bool
}

// admit reports whether a send may be submitted now. When it may not, the
// send counts as refused: the client must resend it after the earlier
// ones. full reports that the conversation has too many refused sends to
// remember (the caller disconnects the client).
func (o *sendOrder) admit(conv string, clientSeq uint64) (ok, full bool) {
	r := o.refused[conv]
	if clientSeq == 0 || len(r) == 0 || clientSeq < r[0].clientSeq {
		return true, false
	}
	for i := range r {
		switch {
		case r[i].clientSeq == clientSeq:
			r[i].resent = true
			return true, false
		case r[i].clientSeq > clientSeq:
			return true, false
		case !r[i].resent:
			return false, !o.record(conv, clientSeq)
		}
	}
	return true, false
}

// failed records that the send was not accepted and will be retried. A
// failed repeat of a send this connection already had accepted (a client
// that resent it before the first answer came) holds nothing back: the
// client has its answer and will not send it again.
func (o *sendOrder) failed(conv string, clientSeq uint64) {
	if clientSeq == 0 {
		return
	}
	if i, found := o.find(conv, clientSeq); found {
		o.refused[conv][i].resent = false
		return
	}
	if clientSeq <= o.accepted[conv] {
		return
	}
	o.record(conv, clientSeq)
}

func (o *sendOrder) find(conv string, clientSeq uint64) (int, bool) {
	return slices.BinarySearchFunc(o.refused[conv], clientSeq, func(r refusedSend, cs uint64) int { return cmp.Compare(r.clientSeq, cs) })
}

// record remembers a refused send; false when the conversation's list is full.
func (o *sendOrder) record(conv string, clientSeq uint64) bool {
	i, found := o.find(conv, clientSeq)
	if found {
		return true
	}
	r := o.refused[conv]
	if len(r) >= maxRefusedPerConversation {
		return false
	}
	if o.refused == nil {
		o.refused = map[string][]refusedSend{}
	}
	o.refused[conv] = slices.Insert(r, i, refusedSend{clientSeq: clientSeq})
	return true
}

// accept records that the send is in the pipeline.
func (o *sendOrder) accept(conv string, clientSeq uint64) {
	if i, found := o.find(conv, clientSeq); found {
		r := slices.Delete(o.refused[conv], i, i+1)
		if len(r) == 0 {
			delete(o.refused, conv)
		} else {
			o.refused[conv] = r
		}
	}
	if o.accepted == nil {
		o.accepted = map[string]uint64{}
	}
	o.accepted[conv] = max(o.accepted[conv], clientSeq)
}
