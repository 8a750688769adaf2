package audit

import "fmt"

// row is what the scan reads of one stored row.
type row struct {
	conv          string
	seq           uint64
	identity      uint64 // hash of (msg_id, sender, device, client_msg_id)
	sequencedAtMs uint64
}

// checker finds gaps, conflicting seqs and clock regressions in rows that
// arrive ordered by (conversation, seq, identity). It keeps one
// conversation's state at a time and hands each finished conversation to
// done, so its memory is bounded by maxDetails, not by the history.
type checker struct {
	maxDetails int
	done       func(*ConversationReport, []uint64) // the report and its conflicting seqs (capped)

	conv      *ConversationReport
	conflicts []uint64 // conflicting seqs of conv, at most maxDetails
	open      bool     // cur holds a seq being read
	cur       seqState
	havePrev  bool // prev* describe the last finished seq of conv
	prevSeq   uint64
	prevTs    uint64
}

// seqState accumulates the rows of one (conversation, seq).
type seqState struct {
	seq          uint64
	rows         uint64
	identities   uint64 // distinct identities (rows arrive sorted by identity)
	lastIdentity uint64
	minTs        uint64
}

// add takes the next row; rows out of order are an error, since every
// conclusion depends on the order.
func (c *checker) add(r row) error {
	if c.conv == nil || r.conv != c.conv.ConversationID {
		if c.conv != nil && r.conv < c.conv.ConversationID {
			return fmt.Errorf("audit: rows out of order: conversation %q after %q", r.conv, c.conv.ConversationID)
		}
		c.flush()
		c.conv = &ConversationReport{ConversationID: r.conv}
	}
	switch {
	case c.open && r.seq == c.cur.seq:
		if r.identity < c.cur.lastIdentity {
			return fmt.Errorf("audit: rows out of order in %q at seq %d", r.conv, r.seq)
		}
		c.cur.rows++
		if r.identity != c.cur.lastIdentity {
			c.cur.identities++
			c.cur.lastIdentity = r.identity
		}
		c.cur.minTs = min(c.cur.minTs, r.sequencedAtMs)
		return nil
	case c.open && r.seq < c.cur.seq:
		return fmt.Errorf("audit: rows out of order in %q: seq %d after %d", r.conv, r.seq, c.cur.seq)
	}
	if c.open {
		c.finishSeq()
	}
	c.open = true
	c.cur = seqState{seq: r.seq, rows: 1, identities: 1, lastIdentity: r.identity, minTs: r.sequencedAtMs}
	return nil
}

// finishSeq folds the seq just read into the conversation's report.
func (c *checker) finishSeq() {
	s, rep := c.cur, c.conv
	rep.Entries++
	rep.Rows += s.rows
	rep.PendingDuplicates += s.rows - s.identities
	if s.identities > 1 {
		rep.ConflictingSeqs++
		if len(c.conflicts) < c.maxDetails {
			c.conflicts = append(c.conflicts, s.seq)
		}
	}
	if next := c.prevSeq + 1; s.seq > next { // prevSeq is 0 before the first seq
		rep.MissingSeqs += s.seq - next
		rep.MissingRanges++
		if len(rep.Missing) < c.maxDetails {
			rep.Missing = append(rep.Missing, SeqRange{From: next, To: s.seq - 1})
		}
	}
	if c.havePrev && s.minTs < c.prevTs {
		rep.ClockRegressions++
		if len(rep.Regressions) < c.maxDetails {
			rep.Regressions = append(rep.Regressions, ClockRegression{
				Seq: s.seq, SequencedAtMs: s.minTs, PrevSeq: c.prevSeq, PrevSequencedAtMs: c.prevTs})
		}
	}
	rep.MaxSeq = s.seq
	c.havePrev, c.prevSeq, c.prevTs = true, s.seq, s.minTs
}

// flush hands the conversation read so far to done and resets the state.
func (c *checker) flush() {
	if c.conv == nil {
		return
	}
	if c.open {
		c.finishSeq()
	}
	c.done(c.conv, c.conflicts)
	c.conv, c.conflicts, c.open, c.havePrev, c.prevSeq, c.prevTs = nil, nil, false, false, 0, 0
}
