package gateway

// sendOrder keeps one connection's sends of a conversation in the client's
// order when some of them fail (I2). Sends are submitted one after another,
// but a send that failed (`unavailable`, `rate_limited`) is retried by the
// client later; a later send accepted meanwhile would take a seq before it,
// and once past the sequencer's hold window the sender's messages would
// swap places. So after a failure, later sends of that conversation are
// refused too, until the failed one goes through: the client resends them
// all in order. Client sends with client_seq 0 ask for no order and are
// never held back. Not safe for concurrent use: the connection's reader
// owns it.
type sendOrder struct {
	blocked  map[string]uint64 // conversation -> lowest client_seq that failed
	accepted map[string]uint64 // conversation -> highest client_seq accepted here
}

// admit reports whether a send may be submitted now.
func (o *sendOrder) admit(conv string, clientSeq uint64) bool {
	b, ok := o.blocked[conv]
	return !ok || clientSeq == 0 || clientSeq <= b
}

// failed records that the send was not accepted and will be retried. A
// failed repeat of a send this connection already had accepted (a client
// that resent it before the first answer came) holds nothing back: the
// client has its answer and will not send it again.
func (o *sendOrder) failed(conv string, clientSeq uint64) {
	if clientSeq == 0 || clientSeq <= o.accepted[conv] {
		return
	}
	if o.blocked == nil {
		o.blocked = map[string]uint64{}
	}
	if b, ok := o.blocked[conv]; !ok || clientSeq < b {
		o.blocked[conv] = clientSeq
	}
}

// accepted records that the send is in the pipeline: sends after it may
// follow once nothing before them is missing.
func (o *sendOrder) accept(conv string, clientSeq uint64) {
	if b, ok := o.blocked[conv]; ok && clientSeq == b {
		delete(o.blocked, conv)
	}
	if o.accepted == nil {
		o.accepted = map[string]uint64{}
	}
	o.accepted[conv] = max(o.accepted[conv], clientSeq)
}
