package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/seqchat/seqchat/schemas/wsprotocol"
)

// Protocol error codes (schemas/wsprotocol/protocol.md).
const (
	CodeBadFrame            = "bad_frame"
	CodeUnknownType         = "unknown_type"
	CodeInvalid             = "invalid"
	CodeFrameTooLarge       = "frame_too_large"
	CodeHelloRequired       = "hello_required"
	CodeTokenInvalid        = "token_invalid"
	CodeTokenExpired        = "token_expired"
	CodeNotMember           = "not_member"
	CodeUnknownConversation = "unknown_conversation"
	CodeRateLimited         = "rate_limited"
	CodeSlowConsumer        = "slow_consumer"
	CodeUnavailable         = "unavailable"
	CodeTooManyConnections  = "too_many_connections"
	CodeInternal            = "internal"
)

// ProtocolError is a problem with a client's frame, answered with an
// `error` frame carrying Code.
type ProtocolError struct {
	Code    string
	Message string
	Ref     string // the frame's client_msg_id or ping id, when known
	// RetryAfter, for a refused send, is when a retry may succeed (zero:
	// no hint).
	RetryAfter time.Duration
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Message }

func protoErr(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Client frames.

// Hello authenticates and says where to resume (conversation -> last
// acknowledged seq). A resume value is a seq, or {"seq": n, "epoch": e}:
// the seq of the stream of that epoch (ResumeEpochs).
type Hello struct {
	Token  string            `json:"token"`
	Resume map[string]uint64 `json:"-"`
	// ResumeEpochs: the epochs resume values named (0 included); a
	// conversation absent from it was given as a bare seq.
	ResumeEpochs map[string]uint64 `json:"-"`
}

// UnmarshalJSON reads resume values of both forms.
func (h *Hello) UnmarshalJSON(b []byte) error {
	var raw struct {
		Token  string                     `json:"token"`
		Resume map[string]json.RawMessage `json:"resume"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	h.Token, h.Resume, h.ResumeEpochs = raw.Token, nil, nil
	for conv, v := range raw.Resume {
		if h.Resume == nil {
			h.Resume = map[string]uint64{}
		}
		var pos struct {
			Seq   *uint64 `json:"seq"`
			Epoch uint64  `json:"epoch"`
		}
		if len(v) > 0 && v[0] == '{' {
			if err := json.Unmarshal(v, &pos); err != nil {
				return fmt.Errorf("resume of %s: %w", conv, err)
			}
			if pos.Seq == nil {
				return fmt.Errorf("resume of %s: no seq", conv)
			}
			h.Resume[conv] = *pos.Seq
			if h.ResumeEpochs == nil {
				h.ResumeEpochs = map[string]uint64{}
			}
			h.ResumeEpochs[conv] = pos.Epoch
			continue
		}
		var seq uint64
		if err := json.Unmarshal(v, &seq); err != nil {
			return fmt.Errorf("resume of %s: %w", conv, err)
		}
		h.Resume[conv] = seq
	}
	return nil
}

// MessageBody is a chat message's payload.
type MessageBody struct {
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// Control is a membership operation.
type Control struct {
	Op      string   `json:"op"`
	UserID  string   `json:"user_id,omitempty"`
	UserIDs []string `json:"user_ids,omitempty"`
	Title   string   `json:"title,omitempty"`
}

// Send is a message, a membership operation, or a revision (with a
// message: an edit) of an earlier message.
type Send struct {
	ConversationID string       `json:"conversation_id"`
	ClientMsgID    string       `json:"client_msg_id"`
	ClientSeq      uint64       `json:"client_seq"`
	Message        *MessageBody `json:"message,omitempty"`
	Control        *Control     `json:"control,omitempty"`
	Revision       *Revision    `json:"revision,omitempty"`
}

// Revision names the message an edit or a recall applies to.
type Revision struct {
	Op        string `json:"op"` // edit or recall
	TargetSeq uint64 `json:"target_seq"`
}

// Ack is a cumulative acknowledgement.
type Ack struct {
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
}

// Sync asks for history after a seq.
type Sync struct {
	ConversationID string `json:"conversation_id"`
	AfterSeq       uint64 `json:"after_seq"`
	Limit          int    `json:"limit,omitempty"`
}

// Read marks the conversation read by the user up to Seq.
type Read struct {
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
}

// ListConversations asks for the user's conversations with unread counts.
type ListConversations struct{}

// Ping is an application-level keepalive.
type Ping struct {
	ID string `json:"id,omitempty"`
}

// ClientFrame is one decoded client frame: exactly one field is set.
type ClientFrame struct {
	Hello *Hello
	Send  *Send
	Ack   *Ack
	Sync  *Sync
	Ping  *Ping
	Read  *Read
	// Conversations: the `conversations` request.
	Conversations *ListConversations
}

// clientFrameDefs maps each client frame type to its definition in the
// schema (the `conversations` request shares its type with the answer).
var clientFrameDefs = map[string]string{"hello": "hello", "send": "send", "ack": "ack", "sync": "sync", "ping": "ping",
	"read": "read", "conversations": "list_conversations"}

// FrameDecoder parses client frames and checks each against its definition
// in the protocol's JSON Schema, so the gateway accepts exactly what the
// document promises (field names are matched exactly, unlike encoding/json).
type FrameDecoder struct {
	schemas map[string]*jsonschema.Schema // client frame type -> its schema
}

// NewFrameDecoder compiles the client frames' schemas.
func NewFrameDecoder() (*FrameDecoder, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(wsprotocol.Schema))
	if err != nil {
		return nil, fmt.Errorf("protocol schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("protocol.schema.json", doc); err != nil {
		return nil, fmt.Errorf("protocol schema: %w", err)
	}
	d := &FrameDecoder{schemas: map[string]*jsonschema.Schema{}}
	for typ, def := range clientFrameDefs {
		s, err := c.Compile("protocol.schema.json#/$defs/" + def)
		if err != nil {
			return nil, fmt.Errorf("protocol schema of %s: %w", typ, err)
		}
		d.schemas[typ] = s
	}
	return d, nil
}

// Decode parses and checks one text frame.
func (d *FrameDecoder) Decode(b []byte) (ClientFrame, *ProtocolError) {
	if f, ok := decodeFast(b); ok {
		return f, nil
	}
	return d.decodeWithSchema(b)
}

// decodeWithSchema checks b against its frame's schema, then decodes it.
func (d *FrameDecoder) decodeWithSchema(b []byte) (ClientFrame, *ProtocolError) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	obj, isObject := v.(map[string]any)
	if err != nil || !isObject {
		return ClientFrame{}, protoErr(CodeBadFrame, "a frame is one JSON object")
	}
	typ, _ := obj["type"].(string)
	if _, ok := obj["type"]; !ok {
		return ClientFrame{}, protoErr(CodeInvalid, "the frame has no type")
	}
	schema := d.schemas[typ]
	if schema == nil {
		return ClientFrame{}, protoErr(CodeUnknownType, "unknown frame type %.40q", fmt.Sprint(obj["type"]))
	}
	if err := schema.Validate(v); err != nil {
		perr := protoErr(CodeInvalid, "%s frame: %s", typ, schemaViolation(err))
		if ref, ok := obj["client_msg_id"].(string); ok && len(ref) <= 128 {
			perr.Ref = ref
		}
		return ClientFrame{}, perr
	}
	var f ClientFrame
	var target any
	switch typ {
	case "hello":
		f.Hello = &Hello{}
		target = f.Hello
	case "send":
		f.Send = &Send{}
		target = f.Send
	case "ack":
		f.Ack = &Ack{}
		target = f.Ack
	case "sync":
		f.Sync = &Sync{}
		target = f.Sync
	case "ping":
		f.Ping = &Ping{}
		target = f.Ping
	case "read":
		f.Read = &Read{}
		target = f.Read
	case "conversations":
		f.Conversations = &ListConversations{}
		target = f.Conversations
	}
	if err := json.Unmarshal(b, target); err != nil { // the schema passed: only numbers past uint64 can fail here
		return ClientFrame{}, protoErr(CodeInvalid, "%s frame: %v", typ, err)
	}
	return f, nil
}

// schemaViolation says where a frame breaks the schema and how, for the
// client: the first innermost cause with its place in the frame (the
// validator's own text starts with the schema's location on the server).
func schemaViolation(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "does not match the protocol's schema"
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	at := "the frame"
	if len(ve.InstanceLocation) > 0 {
		at = strings.Join(ve.InstanceLocation, ".")
	}
	return at + ": " + ve.ErrorKind.LocalizedString(message.NewPrinter(language.English))
}
