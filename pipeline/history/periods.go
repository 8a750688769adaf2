package history

import (
	"math"
	"sort"
)

// Open is the To of a period that has not ended: the user is still a member.
const Open = math.MaxUint64

// Period is a closed range of seqs, From through To, in which a user was a
// member. A joiner's period starts at its join; a leaver's ends at its leave
// or kick, which it still sees (I4).
type Period struct {
	From, To uint64
}

// Change is one membership event that names a user: at Seq the user was
// added (created, joined) or removed (left, kicked).
type Change struct {
	Seq  uint64
	Kind Kind
}

// PeriodsOf derives a user's membership periods from the changes that name
// it, in any order and with repeats (a re-delivered event changes nothing).
// An add while a member and a removal while not one are ignored, as the
// sequencer never writes them.
func PeriodsOf(changes []Change) []Period {
	sorted := append([]Change(nil), changes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	var out []Period
	member := false
	for i, c := range sorted {
		if i > 0 && c.Seq == sorted[i-1].Seq {
			continue
		}
		switch c.Kind {
		case KindCreated, KindJoined:
			if !member {
				out = append(out, Period{From: c.Seq, To: Open})
				member = true
			}
		case KindLeft, KindKicked:
			if member {
				out[len(out)-1].To = c.Seq
				member = false
			}
		}
	}
	return out
}

// Clip returns the parts of periods inside after+1 through upTo.
func Clip(periods []Period, after, upTo uint64) []Period {
	var out []Period
	if after == Open {
		return nil
	}
	for _, p := range periods {
		from, to := max(p.From, after+1), min(p.To, upTo)
		if from <= to {
			out = append(out, Period{From: from, To: to})
		}
	}
	return out
}

// Contains reports whether seq lies in one of periods.
func Contains(periods []Period, seq uint64) bool {
	for _, p := range periods {
		if p.From <= seq && seq <= p.To {
			return true
		}
	}
	return false
}
