package gateway

import (
	"encoding/json"
	"regexp"
	"unicode/utf8"
)

// The schema's id and conversation id patterns (protocol.schema.json).
var (
	idPattern           = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
	conversationPattern = regexp.MustCompile(`^(dm:[A-Za-z0-9._@-]{1,60}:[A-Za-z0-9._@-]{1,60}|g:[A-Za-z0-9._:@-]{1,126})$`)
)

// decodeFast decodes the frames every message costs, a `send` of a message,
// an `ack` and a `read`, without the JSON Schema validator (two thirds of a frame's
// decoding cost). It accepts only frames it can tell are valid: plain
// objects whose keys are the schema's, once each, with values of the
// schema's types and bounds. Anything else (a control send, a number
// written as 1.0, a key repeated, invalid UTF-8, any doubt) gives ok false
// and goes to the schema, which stays the authority on what is valid and on
// the error a client gets. FuzzFastDecodeAgreesWithSchema checks that every
// frame accepted here is accepted by the schema with the same result.
func decodeFast(b []byte) (f ClientFrame, ok bool) {
	if !utf8.Valid(b) {
		return ClientFrame{}, false
	}
	keys, nested, ok := objectKeys(b, "message")
	if !ok {
		return ClientFrame{}, false
	}
	switch {
	case sameKeys(keys, "type", "conversation_id", "client_msg_id", "client_seq", "message") &&
		sameKeys(nested, "content_type", "body"):
		var s struct {
			Type           string `json:"type"`
			ConversationID string `json:"conversation_id"`
			ClientMsgID    string `json:"client_msg_id"`
			ClientSeq      uint64 `json:"client_seq"`
			Message        *struct {
				ContentType string  `json:"content_type"`
				Body        *string `json:"body"` // a pointer: null is not a string
			} `json:"message"`
		}
		if json.Unmarshal(b, &s) != nil || s.Type != "send" || s.ClientSeq < 1 || s.Message == nil || s.Message.Body == nil ||
			!conversationPattern.MatchString(s.ConversationID) || !idPattern.MatchString(s.ClientMsgID) ||
			s.Message.ContentType == "" || utf8.RuneCountInString(s.Message.ContentType) > 128 {
			return ClientFrame{}, false
		}
		return ClientFrame{Send: &Send{ConversationID: s.ConversationID, ClientMsgID: s.ClientMsgID, ClientSeq: s.ClientSeq,
			Message: &MessageBody{ContentType: s.Message.ContentType, Body: *s.Message.Body}}}, true
	case sameKeys(keys, "type", "conversation_id", "seq") && nested == nil:
		var a struct {
			Type           string `json:"type"`
			ConversationID string `json:"conversation_id"`
			Seq            uint64 `json:"seq"`
		}
		if json.Unmarshal(b, &a) != nil || (a.Type != "ack" && a.Type != "read") || a.Seq < 1 || !conversationPattern.MatchString(a.ConversationID) {
			return ClientFrame{}, false
		}
		if a.Type == "read" {
			return ClientFrame{Read: &Read{ConversationID: a.ConversationID, Seq: a.Seq}}, true
		}
		return ClientFrame{Ack: &Ack{ConversationID: a.ConversationID, Seq: a.Seq}}, true
	}
	return ClientFrame{}, false
}

// sameKeys reports whether keys are exactly want, in any order.
func sameKeys(keys []string, want ...string) bool {
	if len(keys) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, k := range keys {
			if k == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// objectKeys lists the keys of the JSON object b and, if its key nest
// holds an object, that object's keys. ok is false unless b is one object,
// no key has an escape or is repeated, and every value is well formed
// (string, number, literal, object or array).
func objectKeys(b []byte, nest string) (keys, nested []string, ok bool) {
	s := scanner{b: b}
	s.space()
	keys, ok = s.object(func(key string) bool {
		if key != nest || s.peek() != '{' {
			return s.value()
		}
		var ok bool
		nested, ok = s.object(func(string) bool { return s.value() })
		return ok
	})
	s.space()
	return keys, nested, ok && s.i == len(b)
}

// scanner walks JSON text just far enough to see its keys.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// object reads an object, calling member for each value after its key.
func (s *scanner) object(member func(key string) bool) (keys []string, ok bool) {
	if s.peek() != '{' {
		return nil, false
	}
	s.i++
	s.space()
	if s.peek() == '}' {
		s.i++
		return []string{}, true
	}
	for {
		s.space()
		key, plain := s.str()
		if !plain {
			return nil, false
		}
		for _, k := range keys {
			if k == key {
				return nil, false
			}
		}
		keys = append(keys, key)
		s.space()
		if s.peek() != ':' {
			return nil, false
		}
		s.i++
		s.space()
		if !member(key) {
			return nil, false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return keys, true
		default:
			return nil, false
		}
	}
}

// str reads a string with no escape (a key); plain is false otherwise.
func (s *scanner) str() (string, bool) {
	if s.peek() != '"' {
		return "", false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return string(s.b[start:j]), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// value skips one value; json.Unmarshal checks its content afterwards.
func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '"':
		for j := s.i + 1; j < len(s.b); j++ {
			switch s.b[j] {
			case '\\':
				j++
			case '"':
				s.i = j + 1
				return true
			}
		}
		return false
	case c == '{':
		_, ok := s.object(func(string) bool { return s.value() })
		return ok
	case c == '[':
		s.i++
		s.space()
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			s.space()
			if !s.value() {
				return false
			}
			s.space()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	default: // a number or a literal: up to the next delimiter
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}
