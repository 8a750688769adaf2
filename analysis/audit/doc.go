// Package audit checks the stored history against the ordering invariants:
// per conversation it finds missing seqs (I1), seqs that carry two different
// entries (I7), a sender's client_msg_id sequenced twice (I3) and sequencing
// timestamps that go backwards while seq goes forward (a sequencer clock
// behind its predecessor's after a failover). It streams the table in
// (conversation_id, seq) order, so its own memory stays bounded by the
// report's caps whatever the table's size; imctl audit is its command line.
package audit
