package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// httpError is a refusal of the HTTP API before or instead of a Submit.
type httpError struct {
	status        int
	code, message string
}

func badRequest(format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, args...)}
}

func tooLarge(max int64) *httpError {
	return &httpError{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the request body is over %d bytes", max)}
}

// messageRequest is the body of POST /v1/messages.
type messageRequest struct {
	ConversationID string `json:"conversation_id"`
	ClientMsgID    string `json:"client_msg_id"`
	SenderUserID   string `json:"sender_user_id"`
	SenderDeviceID string `json:"sender_device_id"` // empty means "server"
	ClientSeq      uint64 `json:"client_seq"`       // 0: no per-device ordering
	ContentType    string `json:"content_type"`
	Body           string `json:"body"`
}

func (m messageRequest) send() Send {
	device := m.SenderDeviceID
	if device == "" {
		device = serverDevice
	}
	return Send{
		ConversationID: m.ConversationID,
		ClientMsgID:    m.ClientMsgID,
		SenderUserID:   m.SenderUserID,
		SenderDeviceID: device,
		ClientSeq:      m.ClientSeq,
		Message:        &imv1.ChatMessage{ContentType: m.ContentType, Body: []byte(m.Body)},
	}
}

// revisionRequest is the body of POST /v1/revisions: an edit (with the
// new content) or a recall of the message at target_seq.
type revisionRequest struct {
	ConversationID string `json:"conversation_id"`
	ClientMsgID    string `json:"client_msg_id"`
	SenderUserID   string `json:"sender_user_id"`
	SenderDeviceID string `json:"sender_device_id"` // empty means "server"
	ClientSeq      uint64 `json:"client_seq"`       // 0: no per-device ordering
	Op             string `json:"op"`               // edit or recall
	TargetSeq      uint64 `json:"target_seq"`
	ContentType    string `json:"content_type"` // edit only
	Body           string `json:"body"`         // edit only
}

func (m revisionRequest) send() (Send, *httpError) {
	rev := &imv1.Revision{TargetSeq: m.TargetSeq}
	switch m.Op {
	case "edit":
		rev.Op = &imv1.Revision_Edit{Edit: &imv1.ChatMessage{ContentType: m.ContentType, Body: []byte(m.Body)}}
	case "recall":
		if m.ContentType != "" || m.Body != "" {
			return Send{}, badRequest("a recall has no content_type or body")
		}
		rev.Op = &imv1.Revision_Recall{Recall: &imv1.Recall{}}
	default:
		return Send{}, badRequest("op %q: want edit or recall", m.Op)
	}
	s := messageRequest{ConversationID: m.ConversationID, ClientMsgID: m.ClientMsgID, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, ClientSeq: m.ClientSeq}.send()
	s.Message, s.Revision = nil, rev
	return s, nil
}

// groupRequest is the body of POST /v1/groups.
type groupRequest struct {
	GroupID       string   `json:"group_id"`
	ClientMsgID   string   `json:"client_msg_id"`
	CreatorUserID string   `json:"creator_user_id"`
	Title         string   `json:"title"`
	Members       []string `json:"members"`
}

func (g groupRequest) send() Send {
	return Send{
		ConversationID: GroupConversationID(g.GroupID),
		ClientMsgID:    g.ClientMsgID,
		SenderUserID:   g.CreatorUserID,
		SenderDeviceID: serverDevice,
		Control: &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{
			Title: g.Title, InitialMembers: g.Members,
		}}},
	}
}

// memberRequest is the body of POST /v1/groups/{group_id}/members.
type memberRequest struct {
	UserID      string `json:"user_id"`
	ActorUserID string `json:"actor_user_id"` // empty means user_id: a self-join
	ClientMsgID string `json:"client_msg_id"`
}

func (m memberRequest) send(groupID string) Send {
	actor := m.ActorUserID
	if actor == "" {
		actor = m.UserID
	}
	return Send{
		ConversationID: GroupConversationID(groupID),
		ClientMsgID:    m.ClientMsgID,
		SenderUserID:   actor,
		SenderDeviceID: serverDevice,
		Control:        &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: m.UserID}}},
	}
}

// removeMember is DELETE /v1/groups/{group_id}/members/{user_id}: a leave
// when the actor is the user (or not given), a kick by the actor otherwise.
func removeMember(groupID, userID string, query url.Values) (Send, *httpError) {
	for k, v := range query {
		if k != "actor_user_id" && k != "client_msg_id" {
			return Send{}, badRequest("unknown query parameter %s", quote(k))
		}
		if len(v) != 1 {
			return Send{}, badRequest("query parameter %s given %d times", k, len(v))
		}
	}
	s := Send{
		ConversationID: GroupConversationID(groupID),
		ClientMsgID:    query.Get("client_msg_id"),
		SenderUserID:   userID,
		SenderDeviceID: serverDevice,
		Control:        &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}},
	}
	if actor := query.Get("actor_user_id"); actor != "" && actor != userID {
		s.SenderUserID = actor
		s.Control = &imv1.Control{Op: &imv1.Control_Kick{Kick: &imv1.Kick{UserId: userID}}}
	}
	return s, nil
}

func checkJSONContentType(header string) *httpError {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return &httpError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
			fmt.Sprintf("Content-Type is %s, want application/json", quote(header))}
	}
	return nil
}

// decodeJSON decodes exactly one JSON object from body into v, refusing
// unknown fields and trailing data. max is the limit body enforces (an
// http.MaxBytesReader); hitting it is too_large, anything else invalid.
func decodeJSON(body io.Reader, v any, max int64) *httpError {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	if err == nil {
		if err = dec.Decode(&json.RawMessage{}); err == io.EOF {
			err = nil
		} else if !errors.As(err, &tooBig) {
			err = errors.New("data after the JSON object")
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return tooLarge(max)
	case errors.Is(err, io.EOF):
		return badRequest("empty body, want a JSON object")
	default:
		return badRequest("malformed JSON: %v", err)
	}
}
