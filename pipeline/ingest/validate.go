package ingest

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Stable error codes of schemas/wsprotocol/protocol.md that ingest produces.
const (
	CodeInvalid     = "invalid"     // a field is missing, too long or malformed
	CodeNotMember   = "not_member"  // the sender is not one of a dm's two users (I8)
	CodeUnavailable = "unavailable" // the broker did not acknowledge; retry with the same client_msg_id
)

// Error is a send refused before it reached Kafka, with a stable Code for
// clients and a human Message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// Send is one send as the sender asked for it. The sender fields must come
// from authentication, never from the client's payload (I8).
type Send struct {
	ConversationID string
	ClientMsgID    string
	SenderUserID   string
	SenderDeviceID string
	// ClientSeq orders one device's sends in a conversation from 1 (I2).
	// 0 means the sender asks for no per-device ordering (server-side senders).
	ClientSeq uint64
	// Exactly one of Message, Control, Revision and Read.
	Message  *imv1.ChatMessage
	Control  *imv1.Control
	Revision *imv1.Revision
	// Read marks the conversation read up to its seq (>= 1) by the sender:
	// no seq, no answer but a receipt when it advances the sender's read
	// position. Its ClientSeq must be 0 (a mark has no place in the
	// device's send order).
	Read *imv1.ReadMark
}

const (
	dmPrefix    = "dm:"
	groupPrefix = "g:"
)

// DMConversationID is the conversation id of the 1:1 chat of users a and b,
// in either order. a and b must differ for the id to be valid.
func DMConversationID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return dmPrefix + a + ":" + b
}

// GroupConversationID is the conversation id of group id.
func GroupConversationID(id string) string { return groupPrefix + id }

// Validate checks s against the protocol's rules and l (zero fields of l
// mean their defaults). It returns nil or an *Error: CodeInvalid for a
// malformed field, CodeNotMember when the sender of a dm is not one of its
// two users. Group membership is not known here; the sequencer checks it.
func Validate(s Send, l Limits) error {
	l.setDefaults()
	if err := validate(s, l); err != nil {
		return err
	}
	return nil // not the nil *Error: callers compare with nil
}

func validate(s Send, l Limits) *Error {
	dm, isDM, reason := parseConversation(s.ConversationID, l.MaxIDBytes)
	if reason != "" {
		return invalid("conversation_id %s: %s", quote(s.ConversationID), reason)
	}
	if r := checkID(s.ClientMsgID, true, l.MaxIDBytes); r != "" {
		return invalid("client_msg_id %s: %s", quote(s.ClientMsgID), r)
	}
	if r := checkID(s.SenderUserID, false, l.MaxIDBytes); r != "" {
		return invalid("sender_user_id %s: %s", quote(s.SenderUserID), r)
	}
	if r := checkID(s.SenderDeviceID, true, l.MaxIDBytes); r != "" {
		return invalid("sender_device_id %s: %s", quote(s.SenderDeviceID), r)
	}
	n := 0
	for _, set := range []bool{s.Message != nil, s.Control != nil, s.Revision != nil, s.Read != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return invalid("a send needs a message, a control, a revision or a read mark")
	case n > 1:
		return invalid("a send has one of a message, a control, a revision and a read mark")
	case s.Read != nil:
		if s.Read.Seq == 0 {
			return invalid("a read mark needs a seq of 1 or more")
		}
		if s.ClientSeq != 0 {
			return invalid("a read mark has client_seq 0")
		}
	case s.Revision != nil:
		if err := validateRevision(s.Revision, l); err != nil {
			return err
		}
	case s.Message != nil:
		if err := validateMessage(s.Message, l); err != nil {
			return err
		}
	default:
		if err := validateControl(s.Control, s.ConversationID, isDM, l); err != nil {
			return err
		}
	}
	if isDM && s.SenderUserID != dm[0] && s.SenderUserID != dm[1] {
		return &Error{Code: CodeNotMember, Message: fmt.Sprintf("%s is not a user of %s", s.SenderUserID, s.ConversationID)}
	}
	return nil
}

func validateMessage(m *imv1.ChatMessage, l Limits) *Error {
	switch ct := m.GetContentType(); {
	case ct == "":
		return invalid("message: empty content_type")
	case len(ct) > l.MaxContentTypeBytes:
		return invalid("message: content_type is %d bytes, at most %d", len(ct), l.MaxContentTypeBytes)
	case strings.IndexFunc(ct, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
		return invalid("message: content_type %s is not printable ASCII", quote(ct))
	}
	if n := len(m.GetBody()); n > l.MaxBodyBytes {
		return invalid("message: body is %d bytes, at most %d", n, l.MaxBodyBytes)
	}
	return nil
}

func validateRevision(r *imv1.Revision, l Limits) *Error {
	if r.GetTargetSeq() == 0 {
		return invalid("revision: target_seq must be at least 1")
	}
	switch op := r.GetOp().(type) {
	case *imv1.Revision_Edit:
		if op == nil || op.Edit == nil {
			return invalid("revision edit: no message")
		}
		if err := validateMessage(op.Edit, l); err != nil {
			return invalid("revision edit: %s", err.Message)
		}
	case *imv1.Revision_Recall:
		if op == nil || op.Recall == nil {
			return invalid("revision recall: empty op")
		}
	default:
		return invalid("revision: no op (edit or recall)")
	}
	return nil
}

func validateControl(c *imv1.Control, conv string, isDM bool, l Limits) *Error {
	// A typed nil wrapper or op would make the generated getters panic.
	var name string
	var empty bool
	switch op := c.GetOp().(type) {
	case *imv1.Control_CreateGroup:
		name, empty = "create_group", op == nil || op.CreateGroup == nil
	case *imv1.Control_Join:
		name, empty = "join", op == nil || op.Join == nil
	case *imv1.Control_Leave:
		name, empty = "leave", op == nil || op.Leave == nil
	case *imv1.Control_Kick:
		name, empty = "kick", op == nil || op.Kick == nil
	default:
		return invalid("control: no op")
	}
	if empty {
		return invalid("control %s: empty op", name)
	}
	if isDM {
		return invalid("control %s: only groups have members to change, %s is a dm", name, conv)
	}
	switch name {
	case "create_group":
		return validateCreateGroup(c.GetCreateGroup(), l)
	case "join", "kick":
		u := c.GetJoin().GetUserId()
		if name == "kick" {
			u = c.GetKick().GetUserId()
		}
		if r := checkID(u, false, l.MaxIDBytes); r != "" {
			return invalid("control %s: user_id %s: %s", name, quote(u), r)
		}
	}
	return nil
}

func validateCreateGroup(g *imv1.CreateGroup, l Limits) *Error {
	title := g.GetTitle()
	if len(title) > l.MaxTitleBytes {
		return invalid("create_group: title is %d bytes, at most %d", len(title), l.MaxTitleBytes)
	}
	if !utf8.ValidString(title) { // protobuf refuses to encode it
		return invalid("create_group: title is not valid UTF-8")
	}
	members := g.GetInitialMembers()
	if len(members) > l.MaxInitialMembers {
		return invalid("create_group: %d initial members, at most %d", len(members), l.MaxInitialMembers)
	}
	for i, m := range members {
		if r := checkID(m, false, l.MaxIDBytes); r != "" {
			return invalid("create_group: initial member %d %s: %s", i, quote(m), r)
		}
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return invalid("create_group: initial member %s is listed twice", sorted[i])
		}
	}
	return nil
}

// parseConversation checks a conversation id; for a dm it returns its two
// users. reason is empty when the id is valid.
func parseConversation(id string, maxID int) (dm [2]string, isDM bool, reason string) {
	if len(id) > maxID {
		return dm, false, fmt.Sprintf("%d bytes, at most %d", len(id), maxID)
	}
	if rest, ok := strings.CutPrefix(id, dmPrefix); ok {
		a, b, ok := strings.Cut(rest, ":")
		if !ok {
			return dm, true, "want dm:<user>:<user>"
		}
		if r := checkID(a, false, maxID); r != "" {
			return dm, true, "first user: " + r
		}
		if r := checkID(b, false, maxID); r != "" {
			return dm, true, "second user: " + r
		}
		if a >= b {
			return dm, true, "the two user ids must differ and be sorted (use DMConversationID)"
		}
		return [2]string{a, b}, true, ""
	}
	if rest, ok := strings.CutPrefix(id, groupPrefix); ok {
		if r := checkID(rest, true, maxID); r != "" {
			return dm, false, "group id: " + r
		}
		return dm, false, ""
	}
	return dm, false, "want dm:<user>:<user> or g:<group>"
}

// checkID checks an id: 1 to max bytes of [A-Za-z0-9._@-], and ':' when
// colon is true. User ids get no ':' because dm conversation ids use it as
// the separator. It returns why the id is invalid, or "".
func checkID(s string, colon bool, max int) string {
	if s == "" {
		return "empty"
	}
	if len(s) > max {
		return fmt.Sprintf("%d bytes, at most %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '@', c == '-':
		case c == ':' && colon:
		default:
			allowed := "[A-Za-z0-9._@-]"
			if colon {
				allowed = "[A-Za-z0-9._:@-]"
			}
			return fmt.Sprintf("byte %d is %q, allowed are %s", i, c, allowed)
		}
	}
	return ""
}

// quote shows untrusted input in a message, shortened so an error never
// echoes a whole oversized field.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
