package gateway

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/schemas/wsprotocol"
)

func TestHelloResumeTakesSeqsAndEpochs(t *testing.T) {
	d := decoder(t)
	f, err := d.Decode([]byte(`{"type":"hello","token":"t","resume":{"g:a":41,"g:b":{"seq":3,"epoch":1764200000000},"dm:a:b":{"seq":7,"epoch":0},"g:c":{"seq":0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(f.Hello.Resume, f.Hello.ResumeEpochs); got != "map[dm:a:b:7 g:a:41 g:b:3 g:c:0] map[dm:a:b:0 g:b:1764200000000 g:c:0]" {
		t.Fatalf("resume %s", got)
	}
	for _, bad := range []string{
		`{"type":"hello","token":"t","resume":{"g:a":{"epoch":5}}}`,
		`{"type":"hello","token":"t","resume":{"g:a":{"seq":-1}}}`,
		`{"type":"hello","token":"t","resume":{"g:a":{"seq":1,"x":2}}}`,
		`{"type":"hello","token":"t","resume":{"g:a":"1"}}`,
	} {
		if _, err := d.Decode([]byte(bad)); err == nil || err.Code != CodeInvalid {
			t.Errorf("%s: %v, want invalid", bad, err)
		}
	}
}

// TestEpochFramesMatchTheSchema: msg carries a non-zero epoch and leaves
// out 0; reset is a valid server frame.
func TestEpochFramesMatchTheSchema(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(wsprotocol.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("protocol.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("protocol.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	valid := func(b []byte) {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err == nil {
			err = s.Validate(v)
		}
		if err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	rec := &imv1.SequencedRecord{ConversationId: "g:a", Seq: 5, Epoch: 1764300000000, MsgId: "m", SenderUserId: "u", SenderDeviceId: "d",
		Body: &imv1.SequencedRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("x")}}}
	b := encode(EntryFrame(rec))
	if !bytes.Contains(b, []byte(`"epoch":1764300000000`)) {
		t.Errorf("msg of epoch 1764300000000: %s", b)
	}
	valid(b)
	rec.Epoch = 0
	if b := encode(EntryFrame(rec)); bytes.Contains(b, []byte(`epoch`)) {
		t.Errorf("msg of epoch 0 names an epoch: %s", b)
	} else {
		valid(b)
	}
	valid(encode(resetFrame{Type: "reset", ConversationID: "g:a", Epoch: 1764300000000, Message: "rebuilt"}))
}

// TestEpochRules: what a record of each epoch does to a conversation the
// device holds at epoch 20, known from a record or only claimed at hello.
func TestEpochRules(t *testing.T) {
	for _, tt := range []struct {
		name           string
		claimed        bool
		epoch          uint64
		kept, reset    bool
		epochAfterward uint64
	}{
		{"same epoch", false, 20, true, false, 20},
		{"older epoch: stale", false, 10, false, false, 20},
		{"newer epoch: reset", false, 30, true, true, 30},
		{"claimed, confirmed", true, 20, true, false, 20},
		{"claimed, older is current: reset", true, 10, true, true, 10},
		{"claimed, newer is current: reset", true, 30, true, true, 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConn(8, 1, 1)
			c.acked = map[string]uint64{"g:a": 5}
			cs := &convState{reorder: NewReorder(5, 0), epoch: 20, epochKnown: true, epochClaimed: tt.claimed}
			c.mu.Lock()
			kept := c.epochLocked("g:a", cs, tt.epoch)
			c.mu.Unlock()
			reset := c.queued() == 1
			if kept != tt.kept || reset != tt.reset || cs.epoch != tt.epochAfterward {
				t.Fatalf("kept %v reset %v epoch %d, want %v %v %d", kept, reset, cs.epoch, tt.kept, tt.reset, tt.epochAfterward)
			}
			if reset && (cs.reorder.Delivered() != 0 || c.acked["g:a"] != 0 || !bytes.Contains(c.queue[0].b, []byte(`"type":"reset"`))) {
				t.Fatalf("after a reset: delivered %d, acked %d, frame %s", cs.reorder.Delivered(), c.acked["g:a"], c.queue[0].b)
			}
		})
	}
}
