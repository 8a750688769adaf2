// Package historyapi is the JSON of the history service's read API
// (docs/history-api.md): the one definition the history service writes and
// gateways read.
package historyapi

// Page is the answer of GET /v1/conversations/{id}/messages.
type Page struct {
	ConversationID string `json:"conversation_id"`
	// Epoch of the conversation's stream every entry of the page is of
	// (0: from before epochs): the current one. A reader that holds seqs
	// of another epoch starts the conversation afresh.
	Epoch        uint64  `json:"epoch,omitempty"`
	Entries      []Entry `json:"entries"`
	CompleteUpTo uint64  `json:"complete_up_to"`
	NextAfterSeq uint64  `json:"next_after_seq"`
}

// Entry is one entry: Message for a chat message, Event for a membership
// change, Revision (with Message for an edit) for an edit or a recall.
type Entry struct {
	Seq                uint64    `json:"seq"`
	Epoch              uint64    `json:"epoch,omitempty"`
	MsgID              string    `json:"msg_id"`
	SenderUserID       string    `json:"sender_user_id"`
	SenderDeviceID     string    `json:"sender_device_id"`
	ClientMsgID        string    `json:"client_msg_id"`
	SequencedAtMs      int64     `json:"sequenced_at_ms"`
	PredecessorMissing bool      `json:"predecessor_missing"`
	Message            *Message  `json:"message,omitempty"`
	Event              *Event    `json:"event,omitempty"`
	Revision           *Revision `json:"revision,omitempty"`
	// Edited: Message is the message's latest edit. Recalled: the message
	// (or the message an edit revised) was recalled; no Message.
	Edited   bool `json:"edited,omitempty"`
	Recalled bool `json:"recalled,omitempty"`
}

// Revision names the message an edit or a recall (Op) revises.
type Revision struct {
	Op        string `json:"op"`
	TargetSeq uint64 `json:"target_seq"`
}

// Message is a chat message's payload; Body is its bytes as a string.
type Message struct {
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// Event is a membership change: Kind created, joined, left or kicked.
type Event struct {
	Kind    string   `json:"kind"`
	UserIDs []string `json:"user_ids"`
	Title   string   `json:"title,omitempty"`
}

// CatchUpRequest is the body of POST /v1/users/{user_id}/catch-up: the
// conversations of a reconnecting device, each with the seq it has.
type CatchUpRequest struct {
	After map[string]uint64 `json:"after"`
	// Limit is the page size of every conversation; zero means the
	// service's default.
	Limit int `json:"limit,omitempty"`
}

// CatchUp is its answer: one page per conversation read (the same page
// GET …/messages gives), and the conversations refused, each with its code.
type CatchUp struct {
	Pages   []Page    `json:"pages"`
	Refused []Refused `json:"refused"`
}

// Refused is one conversation a catch-up did not read.
type Refused struct {
	ConversationID string `json:"conversation_id"`
	Code           string `json:"code"`
	Message        string `json:"message"`
}

// Progress is the answer of GET /v1/progress: per live generation's
// sequenced topic and partition (by index), the offset before which
// history has stored every record. StoredBefore is the oldest live
// generation's, for gateways from before generations.
type Progress struct {
	StoredBefore []int64         `json:"stored_before"`
	Topics       []TopicProgress `json:"topics,omitempty"`
}

// TopicProgress is one generation's sequenced topic in a Progress.
type TopicProgress struct {
	Generation   uint32  `json:"generation"`
	Topic        string  `json:"topic"`
	StoredBefore []int64 `json:"stored_before"`
}

// ConversationList is the answer of GET /v1/users/{user_id}/unread: every
// conversation the user belongs or belonged to, by id.
type ConversationList struct {
	Conversations []ConversationState `json:"conversations"`
}

// ConversationState is one conversation of a user's list: the last seq the
// user may see, its read position (0: never read) and its unread count
// (chat messages by others after ReadSeq, in the user's periods).
type ConversationState struct {
	ConversationID string `json:"conversation_id"`
	LastSeq        uint64 `json:"last_seq"`
	ReadSeq        uint64 `json:"read_seq"`
	Unread         uint64 `json:"unread"`
}

// ReadCounts is the answer of GET /v1/conversations/{id}/reads: "read by
// k of n" for each chat message of the page.
type ReadCounts struct {
	ConversationID string      `json:"conversation_id"`
	Reads          []ReadCount `json:"reads"`
	CompleteUpTo   uint64      `json:"complete_up_to"`
	NextAfterSeq   uint64      `json:"next_after_seq"`
}

// ReadCount: of the Members users who were members at Seq (its sender
// left out), ReadBy have read it.
type ReadCount struct {
	Seq          uint64 `json:"seq"`
	SenderUserID string `json:"sender_user_id"`
	ReadBy       int    `json:"read_by"`
	Members      int    `json:"members"`
}
