package audit

import "time"

// Report is the outcome of one audit.
type Report struct {
	Database     string    `json:"database"`
	Conversation string    `json:"conversation,omitempty"` // the Config filter
	Since        time.Time `json:"since,omitzero"`         // the Config filter
	Totals       Totals    `json:"totals"`
	// Conversations are the conversations with anomalies, by id, at most
	// Config.MaxConversations of them.
	Conversations []ConversationReport `json:"conversations"`
	// OmittedConversations counts the conversations with anomalies left out
	// of Conversations; their anomalies are in Totals.
	OmittedConversations uint64 `json:"omitted_conversations"`
	// Incomplete means Totals.AnomalousConversations and
	// OmittedConversations are only lower bounds: more conversations than
	// Config.MaxConversations reuse client_msg_ids, and past that many the
	// audit counts the reuses (Totals.ReusedClientMsgIDs stays exact) but
	// not which conversations they make anomalous.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Totals count over every audited conversation.
type Totals struct {
	Conversations uint64 `json:"conversations"`
	// Rows read, copies awaiting a merge included.
	Rows uint64 `json:"rows"`
	// Entries are distinct (conversation, seq).
	Entries uint64 `json:"entries"`
	// PendingDuplicates are identical copies of an entry that the
	// ReplacingMergeTree has not merged yet: expected after a sink restart,
	// not an anomaly.
	PendingDuplicates uint64 `json:"pending_duplicates"`
	// AnomalousConversations have at least one anomaly (exact unless
	// Report.Incomplete).
	AnomalousConversations uint64 `json:"anomalous_conversations"`
	MissingSeqs            uint64 `json:"missing_seqs"`
	ConflictingSeqs        uint64 `json:"conflicting_seqs"`
	ReusedClientMsgIDs     uint64 `json:"reused_client_msg_ids"`
	ClockRegressions       uint64 `json:"clock_regressions"`
}

// Anomalies is the number of anomalies of every kind.
func (t Totals) Anomalies() uint64 {
	return t.MissingSeqs + t.ConflictingSeqs + t.ReusedClientMsgIDs + t.ClockRegressions
}

// HasAnomalies says whether the audit found anything wrong.
func (r *Report) HasAnomalies() bool { return r.Totals.Anomalies() > 0 }

// ConversationReport is what the audit found in one conversation. Every
// count is exact; the list beside it holds at most Config.MaxDetails items.
type ConversationReport struct {
	ConversationID    string `json:"conversation_id"`
	MaxSeq            uint64 `json:"max_seq"`
	Entries           uint64 `json:"entries"`
	Rows              uint64 `json:"rows"`
	PendingDuplicates uint64 `json:"pending_duplicates"`

	// MissingSeqs are the seqs between 1 and MaxSeq that have no row (I1),
	// in MissingRanges runs of consecutive seqs; Missing lists the runs,
	// lowest first.
	MissingSeqs   uint64     `json:"missing_seqs"`
	MissingRanges uint64     `json:"missing_ranges"`
	Missing       []SeqRange `json:"missing,omitempty"`

	// ConflictingSeqs carry more than one distinct entry (I7).
	ConflictingSeqs uint64     `json:"conflicting_seqs"`
	Conflicts       []Conflict `json:"conflicts,omitempty"`

	// ReusedClientMsgIDs are a sender's client_msg_ids stored under more
	// than one seq (I3).
	ReusedClientMsgIDs uint64              `json:"reused_client_msg_ids"`
	Reused             []ReusedClientMsgID `json:"reused,omitempty"`

	// ClockRegressions are the seqs sequenced earlier than the seq before
	// them.
	ClockRegressions uint64            `json:"clock_regressions"`
	Regressions      []ClockRegression `json:"regressions,omitempty"`
}

// Anomalies is the number of anomalies of every kind in the conversation.
func (c ConversationReport) Anomalies() uint64 {
	return c.MissingSeqs + c.ConflictingSeqs + c.ReusedClientMsgIDs + c.ClockRegressions
}

// SeqRange is the seqs From through To, both included.
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Conflict is a seq with more than one distinct entry. An entry is
// identified by (msg_id, sender, device, client_msg_id): the sequencer
// derives msg_id from (conversation, seq), so two different sends given the
// same seq may share it.
type Conflict struct {
	Seq     uint64          `json:"seq"`
	Entries []ConflictEntry `json:"entries"`
}

// ConflictEntry is one of the distinct entries of a conflicting seq.
type ConflictEntry struct {
	MsgID          string `json:"msg_id"`
	SenderUserID   string `json:"sender_user_id"`
	SenderDeviceID string `json:"sender_device_id"`
	ClientMsgID    string `json:"client_msg_id"`
	Rows           uint64 `json:"rows"` // copies of this entry
}

// ReusedClientMsgID is one sender's client_msg_id stored under several seqs.
type ReusedClientMsgID struct {
	SenderUserID string `json:"sender_user_id"`
	ClientMsgID  string `json:"client_msg_id"`
	// Seqs lists the seqs, lowest first (at most Config.MaxDetails);
	// SeqCount counts them all.
	Seqs     []uint64 `json:"seqs"`
	SeqCount uint64   `json:"seq_count"`
}

// ClockRegression is a seq sequenced earlier than the seq before it: the
// sequencer's clock went backwards, typically across a failover. When a seq
// has several rows, its earliest sequenced_at_ms counts.
type ClockRegression struct {
	Seq               uint64 `json:"seq"`
	SequencedAtMs     uint64 `json:"sequenced_at_ms"`
	PrevSeq           uint64 `json:"prev_seq"` // the highest stored seq below Seq
	PrevSequencedAtMs uint64 `json:"prev_sequenced_at_ms"`
}

// BackwardsMs is how far the clock went back.
func (r ClockRegression) BackwardsMs() uint64 { return r.PrevSequencedAtMs - r.SequencedAtMs }
