package history

// The JSON shapes of the read API (docs/history-api.md).

// PageJSON is the answer of GET /v1/conversations/{id}/messages.
type PageJSON struct {
	ConversationID string      `json:"conversation_id"`
	Entries        []EntryJSON `json:"entries"`
	CompleteUpTo   uint64      `json:"complete_up_to"`
	NextAfterSeq   uint64      `json:"next_after_seq"`
}

// EntryJSON is one entry: Message for a chat message, Event for a
// membership change.
type EntryJSON struct {
	Seq                uint64       `json:"seq"`
	MsgID              string       `json:"msg_id"`
	SenderUserID       string       `json:"sender_user_id"`
	SenderDeviceID     string       `json:"sender_device_id"`
	ClientMsgID        string       `json:"client_msg_id"`
	SequencedAtMs      uint64       `json:"sequenced_at_ms"`
	PredecessorMissing bool         `json:"predecessor_missing"`
	Message            *MessageJSON `json:"message,omitempty"`
	Event              *EventJSON   `json:"event,omitempty"`
}

// MessageJSON is a chat message's payload; Body is its bytes as a string.
type MessageJSON struct {
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// EventJSON is a membership change: Kind created, joined, left or kicked.
type EventJSON struct {
	Kind    Kind     `json:"kind"`
	UserIDs []string `json:"user_ids"`
	Title   string   `json:"title,omitempty"`
}

func pageJSON(p Page) PageJSON {
	out := PageJSON{ConversationID: p.ConversationID, Entries: make([]EntryJSON, 0, len(p.Entries)),
		CompleteUpTo: p.CompleteUpTo, NextAfterSeq: p.NextAfterSeq}
	for _, r := range p.Entries {
		e := EntryJSON{Seq: r.Seq, MsgID: r.MsgID, SenderUserID: r.SenderUserID, SenderDeviceID: r.SenderDeviceID,
			ClientMsgID: r.ClientMsgID, SequencedAtMs: r.SequencedAtMs, PredecessorMissing: r.PredecessorMissing}
		if r.Kind == KindMessage {
			e.Message = &MessageJSON{ContentType: r.ContentType, Body: r.Body}
		} else {
			users := r.MemberUserIDs
			if users == nil {
				users = []string{} // "user_ids": [], never null
			}
			e.Event = &EventJSON{Kind: r.Kind, UserIDs: users, Title: r.Title}
		}
		out.Entries = append(out.Entries, e)
	}
	return out
}
