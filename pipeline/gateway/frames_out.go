package gateway

import (
	"encoding/json"
	"strings"

	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Server frames (schemas/wsprotocol/protocol.md). Each marshals with its type.

type welcomeFrame struct {
	Type          string `json:"type"`
	UserID        string `json:"user_id"`
	DeviceID      string `json:"device_id"`
	GatewayID     string `json:"gateway_id"`
	MaxFrameBytes int    `json:"max_frame_bytes"`
}

type acceptedFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	ClientMsgID    string `json:"client_msg_id"`
	Seq            uint64 `json:"seq,omitempty"`
}

type rejectedFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	ClientMsgID    string `json:"client_msg_id"`
	Code           string `json:"code"`
	Message        string `json:"message"`
}

type eventBody struct {
	Kind    string   `json:"kind"`
	UserIDs []string `json:"user_ids"`
	Title   string   `json:"title,omitempty"`
}

// MsgFrame is one entry as clients receive it.
type MsgFrame struct {
	Type               string       `json:"type"`
	ConversationID     string       `json:"conversation_id"`
	Seq                uint64       `json:"seq"`
	Epoch              uint64       `json:"epoch,omitempty"`
	MsgID              string       `json:"msg_id"`
	SenderUserID       string       `json:"sender_user_id"`
	SenderDeviceID     string       `json:"sender_device_id"`
	ClientMsgID        string       `json:"client_msg_id,omitempty"`
	SequencedAtMs      int64        `json:"sequenced_at_ms"`
	PredecessorMissing bool         `json:"predecessor_missing,omitempty"`
	Message            *MessageBody `json:"message,omitempty"`
	Event              *eventBody   `json:"event,omitempty"`
	// Revision: this entry edits (Message is the new content) or recalls
	// an earlier message.
	Revision *Revision `json:"revision,omitempty"`
	// Edited, Recalled: a message read from history as it is now (its
	// latest edit's content; no content once recalled).
	Edited   bool `json:"edited,omitempty"`
	Recalled bool `json:"recalled,omitempty"`
}

// resetFrame: the device holds conversation ConversationID at another
// epoch than its stream's current one; it drops what it holds of it and
// gets its entries again from seq 1 of Epoch.
type resetFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Epoch          uint64 `json:"epoch"`
	Message        string `json:"message"`
}

type syncedFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	UpToSeq        uint64 `json:"up_to_seq"`
	Complete       bool   `json:"complete"`
}

type receiptFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Seq            uint64 `json:"seq"`
}

type conversationsFrame struct {
	Type          string                         `json:"type"`
	Conversations []historyapi.ConversationState `json:"conversations"`
}

type pongFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type errorFrame struct {
	Type         string `json:"type"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	Fatal        bool   `json:"fatal"`
	Ref          string `json:"ref,omitempty"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs of strings and numbers are encoded
		panic(err)
	}
	return b
}

func errorPayload(e *ProtocolError, fatal bool) []byte {
	return encode(errorFrame{Type: "error", Code: e.Code, Message: e.Message, Fatal: fatal, Ref: e.Ref,
		RetryAfterMs: e.RetryAfter.Milliseconds()})
}

// EntryFrame turns a sequenced entry (seq >= 1) into its `msg` frame.
func EntryFrame(r *imv1.SequencedRecord) MsgFrame {
	f := MsgFrame{Type: "msg", ConversationID: r.ConversationId, Seq: r.Seq, Epoch: r.Epoch, MsgID: r.MsgId,
		SenderUserID: r.SenderUserId, SenderDeviceID: r.SenderDeviceId, ClientMsgID: r.ClientMsgId,
		SequencedAtMs: r.SequencedAtMs, PredecessorMissing: r.PredecessorMissing}
	switch b := r.Body.(type) {
	case *imv1.SequencedRecord_Message:
		f.Message = &MessageBody{ContentType: b.Message.ContentType, Body: string(b.Message.Body)}
	case *imv1.SequencedRecord_Membership:
		f.Event = &eventBody{Kind: strings.ToLower(b.Membership.Kind.String()), UserIDs: b.Membership.UserIds, Title: b.Membership.Title}
		if f.Event.UserIDs == nil {
			f.Event.UserIDs = []string{}
		}
	case *imv1.SequencedRecord_Revision:
		f.Revision = &Revision{Op: "recall", TargetSeq: b.Revision.TargetSeq}
		if e := b.Revision.GetEdit(); e != nil {
			f.Revision.Op = "edit"
			f.Message = &MessageBody{ContentType: e.ContentType, Body: string(e.Body)}
		}
	}
	return f
}

// ReceiptFrame turns a read receipt (a notice) into its `receipt` frame;
// nil for any other record.
func ReceiptFrame(r *imv1.SequencedRecord) []byte {
	rr := r.GetReadReceipt()
	if rr == nil || rr.ReadSeq == 0 {
		return nil
	}
	return encode(receiptFrame{Type: "receipt", ConversationID: r.ConversationId, UserID: rr.UserId, Seq: rr.ReadSeq})
}

// rejectionFrame turns a rejection notice (seq 0) into `rejected`; nil for
// any other notice.
func rejectionFrame(r *imv1.SequencedRecord) []byte {
	b := r.GetRejection()
	if b == nil {
		return nil
	}
	return encode(rejectedFrame{Type: "rejected", ConversationID: r.ConversationId, ClientMsgID: r.ClientMsgId,
		Code: b.Code, Message: b.Message})
}
