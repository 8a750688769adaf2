package client

import "encoding/json"

// Message is a chat message's content.
type Message struct {
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// Control is a membership change: Op is create_group (Title, UserIDs: the
// initial members besides the sender), join (UserID), leave or kick (UserID).
type Control struct {
	Op      string   `json:"op"`
	Title   string   `json:"title,omitempty"`
	UserIDs []string `json:"user_ids,omitempty"`
	UserID  string   `json:"user_id,omitempty"`
}

// Revision edits (with a Message) or recalls the message at TargetSeq.
type Revision struct {
	Op        string `json:"op"`
	TargetSeq uint64 `json:"target_seq"`
}

// Event is a membership entry: Kind is created, joined, left or kicked.
type Event struct {
	Kind    string   `json:"kind"`
	UserIDs []string `json:"user_ids"`
	Title   string   `json:"title,omitempty"`
}

// Entry is one entry of a conversation: a message, a membership event or
// a revision.
type Entry struct {
	Conversation string
	// Epoch is the stream's epoch (0 for streams from before epochs): a
	// conversation rebuilt from nothing restarts at seq 1 of a larger one.
	Epoch              uint64
	Seq                uint64
	MsgID              string
	Sender             string
	SenderDevice       string
	ClientMsgID        string
	SequencedAtMs      int64
	PredecessorMissing bool
	Message            *Message
	Event              *Event
	Revision           *Revision
	// Edited and Recalled: read from history, the message as its
	// revisions left it.
	Edited, Recalled bool
}

// sendFrame is a send as the protocol writes it.
type sendFrame struct {
	Type           string    `json:"type"`
	ConversationID string    `json:"conversation_id"`
	ClientMsgID    string    `json:"client_msg_id"`
	ClientSeq      uint64    `json:"client_seq,omitempty"`
	Message        *Message  `json:"message,omitempty"`
	Control        *Control  `json:"control,omitempty"`
	Revision       *Revision `json:"revision,omitempty"`
}

// serverFrame is any frame from the gateway, decoded loosely: Text holds an
// error's or rejection's message, or a msg's message object.
type serverFrame struct {
	Type               string          `json:"type"`
	ConversationID     string          `json:"conversation_id"`
	Seq                uint64          `json:"seq"`
	Epoch              uint64          `json:"epoch"`
	MsgID              string          `json:"msg_id"`
	SenderUserID       string          `json:"sender_user_id"`
	SenderDeviceID     string          `json:"sender_device_id"`
	ClientMsgID        string          `json:"client_msg_id"`
	SequencedAtMs      int64           `json:"sequenced_at_ms"`
	PredecessorMissing bool            `json:"predecessor_missing"`
	Text               json.RawMessage `json:"message"`
	Event              *Event          `json:"event"`
	Revision           *Revision       `json:"revision"`
	Edited             bool            `json:"edited"`
	Recalled           bool            `json:"recalled"`
	Code               string          `json:"code"`
	Ref                string          `json:"ref"`
	Fatal              bool            `json:"fatal"`
	RetryAfterMs       int64           `json:"retry_after_ms"`
	UpToSeq            uint64          `json:"up_to_seq"`
	Complete           bool            `json:"complete"`
	UserID             string          `json:"user_id"`
	DeviceID           string          `json:"device_id"`
	GatewayID          string          `json:"gateway_id"`
}

func (f *serverFrame) entry() Entry {
	e := Entry{Conversation: f.ConversationID, Epoch: f.Epoch, Seq: f.Seq, MsgID: f.MsgID, Sender: f.SenderUserID, SenderDevice: f.SenderDeviceID,
		ClientMsgID: f.ClientMsgID, SequencedAtMs: f.SequencedAtMs, PredecessorMissing: f.PredecessorMissing,
		Event: f.Event, Revision: f.Revision, Edited: f.Edited, Recalled: f.Recalled}
	if len(f.Text) > 0 && f.Text[0] == '{' {
		var m Message
		if json.Unmarshal(f.Text, &m) == nil {
			e.Message = &m
		}
	}
	return e
}

// text is an error's or rejection's message.
func (f *serverFrame) text() string {
	var s string
	if json.Unmarshal(f.Text, &s) != nil {
		return string(f.Text)
	}
	return s
}
