package sequencer

import (
	"sort"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// cursor is the order and dedup position of one sender device in one
// conversation (I2, I3).
//
// last is the highest client_seq of the device that was sequenced, rejected
// or passed over (an expired hold released a later one). Every client_seq in
// 1..last has been handled, except the ones in open: those were passed over
// or rejected, and never sequenced. So a send with 0 < client_seq <= last
// whose client_seq is not open is a repeat of a send that already got its seq,
// however long ago (the recent-send window only remembers which seq).
//
// open is kept as ranges, sorted, disjoint and non-adjacent, at most
// Options.MaxOpenRangesPerDevice of them. A run of rejected sends or of passed
// over client_seqs is one range, so the bound is only reached by a device
// whose sends keep alternating between sequenced and not.
type cursor struct {
	last uint64
	open []seqRange
}

type seqRange struct{ first, last uint64 }

// isOpen says whether clientSeq was passed over or rejected and not sequenced since.
func (d *cursor) isOpen(clientSeq uint64) bool {
	i := sort.Search(len(d.open), func(i int) bool { return d.open[i].last >= clientSeq })
	return i < len(d.open) && d.open[i].first <= clientSeq
}

// addOpen marks first..last open, then merges ranges down to bound.
//
// Past the bound, the two ranges with the smallest gap between them (the
// lowest such pair on a tie) are merged into one: the client_seqs in the gap
// were sequenced, and from then on count as open, so a repeat of one of them
// that has left the recent-send window is sequenced again (I3 falls back to
// the window, as before exact dedup, for those few client_seqs only). The
// other way to stay bounded, forgetting a range, would answer a late send of a
// never-sequenced client_seq as a duplicate ("accepted") and so lose it
// silently; a rare second seq is the lesser harm, and merging the closest
// pair makes it as rare as the bound allows.
func (d *cursor) addOpen(first, last uint64, bound int) {
	if first == 0 || first > last {
		return
	}
	i := sort.Search(len(d.open), func(i int) bool { return d.open[i].last+1 >= first })
	j := i // d.open[i:j] touch or overlap first..last
	for j < len(d.open) && d.open[j].first <= last+1 {
		first, last = min(first, d.open[j].first), max(last, d.open[j].last)
		j++
	}
	d.open = append(d.open[:i], append([]seqRange{{first, last}}, d.open[j:]...)...)
	d.compact(bound)
}

// closeSeq removes clientSeq from the open set (it was sequenced).
func (d *cursor) closeSeq(clientSeq uint64, bound int) {
	i := sort.Search(len(d.open), func(i int) bool { return d.open[i].last >= clientSeq })
	if i == len(d.open) || d.open[i].first > clientSeq {
		return
	}
	r := d.open[i]
	switch {
	case r.first == r.last:
		d.open = append(d.open[:i], d.open[i+1:]...)
	case clientSeq == r.first:
		d.open[i].first++
	case clientSeq == r.last:
		d.open[i].last--
	default: // split: one more range, which may need a merge (see addOpen)
		d.open = append(d.open[:i+1], append([]seqRange{{clientSeq + 1, r.last}}, d.open[i+1:]...)...)
		d.open[i].last = clientSeq - 1
		d.compact(bound)
	}
}

func (d *cursor) compact(bound int) {
	for len(d.open) > bound && len(d.open) > 1 {
		best := 0
		for k := 1; k+1 < len(d.open); k++ {
			if d.open[k+1].first-d.open[k].last < d.open[best+1].first-d.open[best].last {
				best = k
			}
		}
		d.open[best].last = d.open[best+1].last
		d.open = append(d.open[:best+1], d.open[best+2:]...)
	}
}

func (d *cursor) entry(conv string, dev device) *imv1.StateEntry {
	e := &imv1.DeviceCursor{ConversationId: conv, UserId: dev.user, DeviceId: dev.device, LastClientSeq: d.last, OpenTracked: true}
	if len(d.open) > 0 {
		e.Open = make([]*imv1.ClientSeqRange, len(d.open))
		for i, r := range d.open {
			e.Open[i] = &imv1.ClientSeqRange{First: r.first, Last: r.last}
		}
	}
	return &imv1.StateEntry{Version: imv1.Version, Entry: &imv1.StateEntry_Cursor{Cursor: e}}
}

// restoreCursor rebuilds a cursor from its state entry. The writer keeps the
// ranges sorted and disjoint; they are normalised anyway (ranges past last or
// inverted are dropped), so a damaged entry cannot break the invariants.
func restoreCursor(e *imv1.DeviceCursor, bound int) *cursor {
	d := &cursor{last: e.LastClientSeq}
	if !e.OpenTracked {
		// Written before open sets existed: which client_seqs were rejected
		// or passed over is unknown, so all of them stay open (dedup by the
		// recent window only, as then); the ones above last are exact.
		d.addOpen(1, d.last, bound)
		return d
	}
	for _, r := range e.Open {
		if r.GetLast() <= d.last {
			d.addOpen(r.GetFirst(), r.GetLast(), bound)
		}
	}
	return d
}

// cursor returns dev's cursor in c, creating it at 0.
func (c *conversation) cursor(dev device) *cursor {
	d := c.cursors[dev]
	if d == nil {
		d = &cursor{}
		c.cursors[dev] = d
	}
	return d
}

// lastClientSeq is dev's cursor position (0 if it has none).
func (c *conversation) lastClientSeq(dev device) uint64 {
	if d := c.cursors[dev]; d != nil {
		return d.last
	}
	return 0
}

// saveCursor records dev's cursor as a state change.
func (m *Machine) saveCursor(c *conversation, dev device) {
	m.changes[cursorKey(c.id, dev)] = c.cursors[dev].entry(c.id, dev)
}

// advance moves dev's cursor to clientSeq (never back), marking the
// client_seqs it skips as passed over.
func (m *Machine) advance(c *conversation, dev device, clientSeq uint64) {
	d := c.cursor(dev)
	if clientSeq <= d.last {
		return
	}
	d.addOpen(d.last+1, clientSeq-1, m.opts.MaxOpenRangesPerDevice)
	d.last = clientSeq
	m.saveCursor(c, dev)
}

// handled records the outcome of a send with client_seq in 1..cursor: a
// sequenced one leaves the open set, a rejected one joins it (a resend of it
// is a new attempt, evaluated again).
func (m *Machine) handled(c *conversation, dev device, clientSeq uint64, sequenced bool) {
	d := c.cursor(dev)
	if clientSeq == 0 || clientSeq > d.last {
		return
	}
	was := d.isOpen(clientSeq)
	switch {
	case sequenced && was:
		d.closeSeq(clientSeq, m.opts.MaxOpenRangesPerDevice)
	case !sequenced && !was:
		d.addOpen(clientSeq, clientSeq, m.opts.MaxOpenRangesPerDevice)
	default:
		return
	}
	m.saveCursor(c, dev)
}
