package audit

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes the report for people: what was audited, the totals,
// then each listed conversation with its anomalies.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	scope := "all conversations"
	switch {
	case r.Conversation != "":
		scope = "conversation " + r.Conversation
	case !r.Since.IsZero():
		scope = "conversations changed since " + r.Since.UTC().Format(time.RFC3339)
	}
	t := r.Totals
	fmt.Fprintf(&b, "audit of %s.messages, %s\n", r.Database, scope)
	fmt.Fprintf(&b, "scanned %d conversations, %d rows, %d entries; %d identical copies await a merge (not anomalies)\n",
		t.Conversations, t.Rows, t.Entries, t.PendingDuplicates)
	if !r.HasAnomalies() {
		b.WriteString("no anomalies\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	at := ""
	if r.Incomplete {
		at = "at least "
	}
	fmt.Fprintf(&b, "anomalies in %s%d conversations: %d missing seqs, %d conflicting seqs, %d reused client_msg_ids, %d clock regressions\n",
		at, t.AnomalousConversations, t.MissingSeqs, t.ConflictingSeqs, t.ReusedClientMsgIDs, t.ClockRegressions)
	for _, c := range r.Conversations {
		fmt.Fprintf(&b, "\n%s: max seq %d, %d entries, %d rows\n", c.ConversationID, c.MaxSeq, c.Entries, c.Rows)
		if c.MissingSeqs > 0 {
			ranges := make([]string, len(c.Missing))
			for i, m := range c.Missing {
				ranges[i] = fmt.Sprint(m.From)
				if m.To != m.From {
					ranges[i] += fmt.Sprintf("-%d", m.To)
				}
			}
			fmt.Fprintf(&b, "  %d missing seqs: %s%s\n", c.MissingSeqs, strings.Join(ranges, ", "),
				more(len(c.Missing), c.MissingRanges, "ranges"))
		}
		for _, x := range c.Conflicts {
			fmt.Fprintf(&b, "  seq %d has %d different entries:\n", x.Seq, len(x.Entries))
			for _, e := range x.Entries {
				fmt.Fprintf(&b, "    msg_id %s from %s/%s, client_msg_id %s (%d rows)\n",
					e.MsgID, e.SenderUserID, e.SenderDeviceID, e.ClientMsgID, e.Rows)
			}
		}
		if m := more(len(c.Conflicts), c.ConflictingSeqs, "conflicting seqs"); m != "" {
			fmt.Fprintf(&b, " %s\n", m)
		}
		for _, u := range c.Reused {
			seqs := make([]string, len(u.Seqs))
			for i, s := range u.Seqs {
				seqs[i] = fmt.Sprint(s)
			}
			fmt.Fprintf(&b, "  client_msg_id %s of %s has %d seqs: %s%s\n", u.ClientMsgID, u.SenderUserID,
				u.SeqCount, strings.Join(seqs, ", "), more(len(u.Seqs), u.SeqCount, "seqs"))
		}
		if m := more(len(c.Reused), c.ReusedClientMsgIDs, "reused client_msg_ids"); m != "" {
			fmt.Fprintf(&b, " %s\n", m)
		}
		for _, g := range c.Regressions {
			fmt.Fprintf(&b, "  clock went back %d ms at seq %d: %s, after seq %d at %s\n", g.BackwardsMs(),
				g.Seq, stamp(g.SequencedAtMs), g.PrevSeq, stamp(g.PrevSequencedAtMs))
		}
		if m := more(len(c.Regressions), c.ClockRegressions, "clock regressions"); m != "" {
			fmt.Fprintf(&b, " %s\n", m)
		}
	}
	if r.OmittedConversations > 0 {
		fmt.Fprintf(&b, "\n%s%d more conversations with anomalies not listed\n", at, r.OmittedConversations)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// more says how many items a capped list left out, or nothing.
func more(shown int, total uint64, what string) string {
	if total > uint64(shown) {
		return fmt.Sprintf(" (and %d more %s)", total-uint64(shown), what)
	}
	return ""
}

func stamp(ms uint64) string {
	return time.UnixMilli(int64(ms)).UTC().Format("2006-01-02T15:04:05.000Z")
}
