package audit_test

import (
	"os"

	"github.com/seqchat/seqchat/analysis/audit"
)

// The text form of a report, as imctl audit prints it.
func ExampleReport_WriteText() {
	r := &audit.Report{
		Database: "seqchat",
		Totals: audit.Totals{Conversations: 120, Rows: 5004, Entries: 5000, PendingDuplicates: 2,
			AnomalousConversations: 2, MissingSeqs: 3, ReusedClientMsgIDs: 1, ClockRegressions: 1},
		Conversations: []audit.ConversationReport{
			{ConversationID: "dm:alice:bob", MaxSeq: 40, Entries: 37, Rows: 37, MissingSeqs: 3, MissingRanges: 2,
				Missing: []audit.SeqRange{{From: 7, To: 7}, {From: 20, To: 21}}},
			{ConversationID: "g:team", MaxSeq: 90, Entries: 90, Rows: 92, PendingDuplicates: 2,
				ReusedClientMsgIDs: 1,
				Reused:             []audit.ReusedClientMsgID{{SenderUserID: "carol", ClientMsgID: "k7", Seqs: []uint64{12, 1400}, SeqCount: 2}},
				ClockRegressions:   1,
				Regressions: []audit.ClockRegression{{Seq: 51, SequencedAtMs: 1767225600000,
					PrevSeq: 50, PrevSequencedAtMs: 1767225600250}}},
		},
	}
	r.WriteText(os.Stdout)
	// Output:
	// audit of seqchat.messages, all conversations
	// scanned 120 conversations, 5004 rows, 5000 entries; 2 identical copies await a merge (not anomalies)
	// anomalies in 2 conversations: 3 missing seqs, 0 conflicting seqs, 1 reused client_msg_ids, 1 clock regressions
	//
	// dm:alice:bob: max seq 40, 37 entries, 37 rows
	//   3 missing seqs: 7, 20-21
	//
	// g:team: max seq 90, 90 entries, 92 rows
	//   client_msg_id k7 of carol has 2 seqs: 12, 1400
	//   clock went back 250 ms at seq 51: 2026-01-01T00:00:00.000Z, after seq 50 at 2026-01-01T00:00:00.250Z
}
