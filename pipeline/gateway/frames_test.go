package gateway

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/schemas/wsprotocol"
)

func decoder(t testing.TB) *FrameDecoder {
	t.Helper()
	d, err := NewFrameDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecodeClientFrame(t *testing.T) {
	d := decoder(t)
	tests := []struct {
		frame string
		code  string // "" = valid
	}{
		{`{"type":"hello","token":"t","resume":{"g:1":4}}`, ""},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"message":{"content_type":"text/plain","body":"hi"}}`, ""},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":2,"control":{"op":"kick","user_id":"bob"}}`, ""},
		{`{"type":"ack","conversation_id":"dm:a:b","seq":3}`, ""},
		{`{"type":"sync","conversation_id":"g:1","after_seq":0,"limit":50}`, ""},
		{`{"type":"ping","id":"p"}`, ""},
		{`{"type":"read","conversation_id":"g:1","seq":7}`, ""},
		{`{"type":"conversations"}`, ""},
		{`{"type":"read","conversation_id":"g:1","seq":0}`, CodeInvalid},
		{`{"type":"read","conversation_id":"g:1"}`, CodeInvalid},
		{`{"type":"read","conversation_id":"g:1","seq":7,"client_msg_id":"x"}`, CodeInvalid},
		{`{"type":"conversations","conversations":[]}`, CodeInvalid},
		{`{"type":"receipt","conversation_id":"g:1","user_id":"a","seq":1}`, CodeUnknownType}, // a server frame
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":3,"revision":{"op":"edit","target_seq":2},"message":{"content_type":"text/plain","body":"hi!"}}`, ""},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":4,"revision":{"op":"recall","target_seq":2}}`, ""},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":4,"revision":{"op":"recall","target_seq":2},"message":{"content_type":"t","body":"x"}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":4,"revision":{"op":"edit","target_seq":2}}`, CodeInvalid},
		{`not json`, CodeBadFrame},
		{`[1,2]`, CodeBadFrame},
		{`"hello"`, CodeBadFrame},
		{`{"token":"t"}`, CodeInvalid},
		{`{"type":"shout"}`, CodeUnknownType},
		{`{"type":"hello"}`, CodeInvalid},
		{`{"type":"hello","token":"t","extra":1}`, CodeInvalid},
		{`{"type":"hello","token":"t","resume":{"room 1":4}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":0,"message":{"content_type":"t","body":"x"}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"message":{"content_type":"t","body":"x"},"control":{"op":"leave"}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"control":{"op":"kick"}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"control":{"op":"nuke"}}`, CodeInvalid},
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":-1,"message":{"content_type":"t","body":"x"}}`, CodeInvalid},
		{`{"type":"ack","conversation_id":"g:1","seq":0}`, CodeInvalid},
		{`{"type":"sync","conversation_id":"g:1","after_seq":0,"limit":5000}`, CodeInvalid},
		{`{"type":"send","Conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"message":{"content_type":"t","body":"x"}}`, CodeInvalid},
		{`{"type":"welcome","user_id":"a","device_id":"d","gateway_id":"g","max_frame_bytes":1}`, CodeUnknownType}, // a server frame
	}
	for _, tt := range tests {
		_, err := d.Decode([]byte(tt.frame))
		got := ""
		if err != nil {
			got = err.Code
		}
		if got != tt.code {
			t.Errorf("%s: code %q, want %q (%v)", tt.frame, got, tt.code, err)
		}
	}
}

// TestInvalidFrameMessagesNameTheField: an `invalid` answer says which
// field is wrong and why, and shows nothing of the server (the schema
// validator's text starts with the schema file's path on disk).
func TestInvalidFrameMessagesNameTheField(t *testing.T) {
	d := decoder(t)
	tests := []struct{ frame, want string }{
		{`{"type":"send","conversation_id":"g:1","client_msg_id":"c1","client_seq":1,"message":{"content_type":"t","body":5}}`, "send frame: message.body: got number, want string"},
		{`{"type":"ack","conversation_id":"g:1"}`, "ack frame: the frame: missing property 'seq'"},
		{`{"type":"sync","conversation_id":"g:1","after_seq":-1}`, "sync frame: after_seq: minimum: got -1, want 0"},
		{`{"type":"hello","token":"t","extra":1}`, "hello frame: the frame: additional properties 'extra' not allowed"},
	}
	for _, tt := range tests {
		_, err := d.Decode([]byte(tt.frame))
		if err == nil || err.Code != CodeInvalid {
			t.Fatalf("%s: %v, want invalid", tt.frame, err)
		}
		if err.Message != tt.want {
			t.Errorf("%s: message %q, want %q", tt.frame, err.Message, tt.want)
		}
		if strings.Contains(err.Message, "file:") || strings.Contains(err.Message, ".json") {
			t.Errorf("%s: message %q shows the server's schema location", tt.frame, err.Message)
		}
	}
}

// FuzzDecodeClientFrame: nothing panics, an accepted frame has exactly one
// part set, and its re-encoding decodes to the same frame.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, ex := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(wsprotocol.Document, -1) {
		f.Add([]byte(ex[1]))
	}
	d := decoder(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := d.Decode(b)
		if err != nil {
			if err.Code == "" || err.Message == "" {
				t.Fatalf("error without code or message for %q", b)
			}
			return
		}
		set := 0
		for _, p := range []bool{fr.Hello != nil, fr.Send != nil, fr.Ack != nil, fr.Sync != nil, fr.Ping != nil, fr.Read != nil, fr.Conversations != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("%d parts set for %q", set, b)
		}
	})
}

func TestDocumentedClientExamplesDecode(t *testing.T) {
	for _, ex := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(wsprotocol.Document, -1) {
		var head struct {
			Type          string
			Conversations []any
		}
		json.Unmarshal([]byte(ex[1]), &head)
		if _, client := clientFrameDefs[head.Type]; !client || head.Conversations != nil {
			continue // a server frame
		}
		if _, err := decoder(t).Decode([]byte(ex[1])); err != nil {
			t.Errorf("documented %s example refused: %v\n%s", head.Type, err, ex[1])
		}
	}
}

// fastCases are frames on both sides of every check of the fast path.
var fastCases = []string{
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"text/plain","body":"hi"}}`,
	` { "type" : "send" , "client_seq" : 7 , "conversation_id":"dm:a:b","client_msg_id":"m1","message":{"body":"a\nb \"q\" \u00e9","content_type":"text/plain"} } `,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1.0,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1e0,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":0,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":-1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":18446744073709551616,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":null}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":null}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x","x":1}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"},"type":"send"}`,
	`{"type":"send","Conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a\n","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"\u0067:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"x:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m 1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"control":{"op":"leave"}}`,
	`{"type":"Send","conversation_id":"g:a","client_msg_id":"m1","client_seq":1,"message":{"content_type":"t","body":"x"}}`,
	`{"type":"ack","conversation_id":"g:a","seq":3}`,
	`{"type":"ack","conversation_id":"g:a","seq":0}`,
	`{"type":"ack","conversation_id":"g:a","seq":"3"}`,
	`{"type":"ack","conversation_id":"g:a","seq":3}x`,
	`{"type":"ack","conversation_id":"g:a","seq":3,}`,
	`{"type":"ack","conversation_id":"g:a","seq":3]`,
	`{"type":"ping"}`,
	`{"type":"read","conversation_id":"g:a","seq":3}`,
	`{"type":"read","conversation_id":"g:a","seq":0}`,
	`{"type":"Read","conversation_id":"g:a","seq":3}`,
	`{"type":"read","conversation_id":"g a","seq":3}`,
	"{\"type\":\"send\",\"conversation_id\":\"g:a\",\"client_msg_id\":\"m1\",\"client_seq\":1,\"message\":{\"content_type\":\"t\",\"body\":\"\xff\"}}",
}

// TestFastDecodeAgreesWithSchema: whatever the fast path accepts, the
// schema accepts with the same result; what it refuses, the schema decides.
func TestFastDecodeAgreesWithSchema(t *testing.T) {
	d := decoder(t)
	accepted := 0
	for _, c := range fastCases {
		if agreesWithSchema(t, d, []byte(c)) {
			accepted++
		}
	}
	if accepted < 3 {
		t.Fatalf("the fast path accepted %d of the cases: it is not used", accepted)
	}
}

func FuzzFastDecodeAgreesWithSchema(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c))
	}
	d := decoder(f)
	f.Fuzz(func(t *testing.T, b []byte) { agreesWithSchema(t, d, b) })
}

// agreesWithSchema fails t when the fast path accepts b differently from
// the schema; it reports whether the fast path accepted it.
func agreesWithSchema(t *testing.T, d *FrameDecoder, b []byte) bool {
	t.Helper()
	fast, ok := decodeFast(b)
	if !ok {
		return false
	}
	slow, perr := d.decodeWithSchema(b)
	if perr != nil {
		t.Fatalf("fast path accepted %q, the schema refused it: %v", b, perr)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path decoded %q as %+v, the schema as %+v", b, fast, slow)
	}
	return true
}

func BenchmarkDecodeSend(b *testing.B) {
	d := decoder(b)
	frame := []byte(`{"type":"send","conversation_id":"g:lg-g001","client_msg_id":"lg-m123456","client_seq":42,"message":{"content_type":"text/plain","body":"load lg-m123456"}}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, perr := d.Decode(frame); perr != nil {
				b.Fatal(perr)
			}
		}
	})
	b.Run("schema", func(b *testing.B) {
		for b.Loop() {
			if _, perr := d.decodeWithSchema(frame); perr != nil {
				b.Fatal(perr)
			}
		}
	})
}
