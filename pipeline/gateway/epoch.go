package gateway

import "fmt"

// Stream epochs: a conversation's stream has an epoch, chosen when its
// sequencing state was created; if that state is rebuilt from nothing,
// seqs restart at 1 under a new, larger epoch. A device holding a
// conversation at another epoch than the one arriving is told `reset` and
// gets the conversation again from seq 1, so it never mixes two epochs'
// seq 5 (schemas/wsprotocol/protocol.md).

// epochLocked checks epoch, of an entry, page or notice about to reach cs,
// against the epoch the device holds; c.mu is held. false: it is of an
// older epoch (obsolete, dropped). A newer one resets cs first (the device
// is told), and so does any other one while the device's epoch is only
// what it claimed (hello or its stored position): the server's records
// say which epoch is current. An unknown epoch is taken as the device's.
func (c *conn) epochLocked(conv string, cs *convState, epoch uint64) bool {
	switch {
	case !cs.epochKnown:
		cs.epoch, cs.epochKnown = epoch, true
		return true
	case epoch == cs.epoch:
		cs.epochClaimed = false
		return true
	case epoch < cs.epoch && !cs.epochClaimed:
		return false
	}
	c.resetLocked(conv, cs, epoch, fmt.Sprintf("the stream of %s was rebuilt: epoch %d follows %d", conv, epoch, cs.epoch))
	return true
}

// resetLocked starts cs afresh at seq 0 of epoch and tells the device to
// drop what it holds of conv; c.mu is held. A running fill reads on from
// seq 0; what it read of the old epoch is dropped by epochLocked.
func (c *conn) resetLocked(conv string, cs *convState, epoch uint64, why string) {
	c.g.metrics.resets.Inc()
	cs.epoch, cs.epochKnown, cs.epochClaimed = epoch, true, false
	cs.reorder = NewReorder(0, 0)
	cs.target, cs.memberFrom, cs.left, cs.behind = 0, 0, false, headSeen{}
	delete(c.acked, conv)
	c.send(encode(resetFrame{Type: "reset", ConversationID: conv, Epoch: epoch, Message: why}))
}

// resumeEpochLocked sets the epoch the device resumes conv at, when hello
// or its stored position says it; c.mu is held.
func (c *conn) resumeEpochLocked(cs *convState, conv string) {
	if e, ok := c.resumeEpochs[conv]; ok && !cs.epochKnown {
		cs.epoch, cs.epochKnown, cs.epochClaimed = e, true, true
	}
}
