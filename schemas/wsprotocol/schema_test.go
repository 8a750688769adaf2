package wsprotocol

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatalf("protocol.schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("protocol.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("protocol.schema.json")
	if err != nil {
		t.Fatalf("protocol.schema.json does not compile: %v", err)
	}
	return s
}

func validate(s *jsonschema.Schema, frame string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(frame))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// TestDocumentExamplesMatchSchema: every ```json example in protocol.md is a
// valid frame, and every frame type the schema defines has an example.
func TestDocumentExamplesMatchSchema(t *testing.T) {
	s := compile(t)
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(Document, -1)
	if len(examples) < 12 {
		t.Fatalf("found %d examples in protocol.md, want one per frame type at least", len(examples))
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		if err := validate(s, ex[1]); err != nil {
			t.Errorf("example does not match the schema:\n%s\n%v", ex[1], err)
		}
		var head struct{ Type string }
		json.Unmarshal([]byte(ex[1]), &head)
		seen[head.Type] = true
	}
	for _, typ := range []string{"hello", "send", "ack", "sync", "ping", "read", "conversations", "welcome", "accepted", "rejected", "msg", "synced", "reset", "pong", "receipt", "error"} {
		if !seen[typ] {
			t.Errorf("protocol.md has no example of %q", typ)
		}
	}
}

func TestSchemaRejectsBadFrames(t *testing.T) {
	s := compile(t)
	for name, frame := range map[string]string{
		"unknown type":                `{"type": "shout"}`,
		"send with both bodies":       `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"message":{"content_type":"t","body":"x"},"control":{"op":"leave"}}`,
		"send with no body":           `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1}`,
		"client_seq zero":             `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":0,"message":{"content_type":"t","body":"x"}}`,
		"bad conversation id":         `{"type":"ack","conversation_id":"room 1","seq":1}`,
		"kick without user":           `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"control":{"op":"kick"}}`,
		"unknown field":               `{"type":"ping","id":"p","extra":1}`,
		"unknown error code":          `{"type":"error","code":"oops","message":"m","fatal":false}`,
		"hello without token":         `{"type":"hello"}`,
		"negative resume position":    `{"type":"hello","token":"t","resume":{"g:1":-1}}`,
		"sync limit too large":        `{"type":"sync","conversation_id":"g:1","after_seq":0,"limit":5000}`,
		"edit without message":        `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"revision":{"op":"edit","target_seq":3}}`,
		"recall with message":         `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"revision":{"op":"recall","target_seq":3},"message":{"content_type":"t","body":"x"}}`,
		"revision and control":        `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"revision":{"op":"recall","target_seq":3},"control":{"op":"leave"}}`,
		"revision of seq 0":           `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"revision":{"op":"recall","target_seq":0}}`,
		"unknown revision op":         `{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"revision":{"op":"undo","target_seq":3}}`,
		"read of seq 0":               `{"type":"read","conversation_id":"g:1","seq":0}`,
		"read without seq":            `{"type":"read","conversation_id":"g:1"}`,
		"receipt without user":        `{"type":"receipt","conversation_id":"g:1","seq":3}`,
		"conversations with extra":    `{"type":"conversations","after":"g:1"}`,
		"conversation without unread": `{"type":"conversations","conversations":[{"conversation_id":"g:1","last_seq":3,"read_seq":1}]}`,
		"msg with nothing":            `{"type":"msg","conversation_id":"g:1","seq":2,"msg_id":"m","sender_user_id":"a","sender_device_id":"d","sequenced_at_ms":1}`,
		"resume without seq":          `{"type":"hello","token":"t","resume":{"g:1":{"epoch":5}}}`,
		"resume with extra field":     `{"type":"hello","token":"t","resume":{"g:1":{"seq":1,"epoch":5,"x":1}}}`,
		"resume epoch past 2^53":      `{"type":"hello","token":"t","resume":{"g:1":{"seq":1,"epoch":9007199254740992}}}`,
		"msg with epoch 0":            `{"type":"msg","conversation_id":"g:1","seq":2,"epoch":0,"msg_id":"m","sender_user_id":"a","sender_device_id":"d","sequenced_at_ms":1,"message":{"content_type":"t","body":"x"}}`,
		"reset without epoch":         `{"type":"reset","conversation_id":"g:1","message":"m"}`,
	} {
		if err := validate(s, frame); err == nil {
			t.Errorf("%s: schema accepted %s", name, frame)
		}
	}
}
