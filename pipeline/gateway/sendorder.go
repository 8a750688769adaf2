package gateway

import "slices"

// maxRefusedPerConversation bounds the refused sends a connection tracks
// per conversation; a client past it is disconnected (it resends them all,
// in order, on its next connection).
const maxRefusedPerConversation = 4096

// sendOrder keeps one connection's sends of a conversation in the client's
// order when some of them fail (I2). Sends are submitted one after another,
// but a send that failed (`unavailable`, `rate_limited`) is retried by the
// client later; a later send accepted meanwhile would take a seq before it,
// and once past the sequencer's hold window the sender's messages would
// swap places. So after a failure, later sends of that conversation are
// refused too, and every refused send is remembered: a send is admitted
// only once each refused send before it has been accepted. (Remembering
// only the first failure let a new send overtake the refused ones the
// client had not resent yet: seen as sender_order at 2,000 sends/s, when
// rate_limited and unavailable answers are retried after different
// delays.) Client sends with client_seq 0 ask for no order and are never
// held back. Not safe for concurrent use: the connection's reader owns it.
type sendOrder struct {
	refused  map[string][]uint64 // conversation -> refused client_seqs not accepted since, ascending
	accepted map[string]uint64   // conversation -> highest client_seq accepted here
}

// admit reports whether a send may be submitted now. When it may not, the
// send counts as refused: the client must resend it after the earlier
// ones. full reports that the conversation has too many refused sends to
// remember (the caller disconnects the client).
func (o *sendOrder) admit(conv string, clientSeq uint64) (ok, full bool) {
	r := o.refused[conv]
	if clientSeq == 0 || len(r) == 0 || clientSeq <= r[0] {
		return true, false
	}
	return false, !o.record(conv, clientSeq)
}

// failed records that the send was not accepted and will be retried. A
// failed repeat of a send this connection already had accepted (a client
// that resent it before the first answer came) holds nothing back: the
// client has its answer and will not send it again.
func (o *sendOrder) failed(conv string, clientSeq uint64) {
	if clientSeq == 0 || clientSeq <= o.accepted[conv] {
		return
	}
	o.record(conv, clientSeq)
}

// record remembers a refused send; false when the conversation's list is full.
func (o *sendOrder) record(conv string, clientSeq uint64) bool {
	r := o.refused[conv]
	i, found := slices.BinarySearch(r, clientSeq)
	if found {
		return true
	}
	if len(r) >= maxRefusedPerConversation {
		return false
	}
	if o.refused == nil {
		o.refused = map[string][]uint64{}
	}
	o.refused[conv] = slices.Insert(r, i, clientSeq)
	return true
}

// accept records that the send is in the pipeline: the next refused send,
// if any, may follow.
func (o *sendOrder) accept(conv string, clientSeq uint64) {
	if r := o.refused[conv]; len(r) > 0 {
		if i, found := slices.BinarySearch(r, clientSeq); found {
			r = slices.Delete(r, i, i+1)
		}
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
