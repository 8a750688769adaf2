package gateway

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/schemas/wsprotocol"
)

// serverSchema is the whole protocol schema: a server frame must match it.
func serverSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
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
	return s
}

// TestReceiptAndConversationsFramesMatchSchema: the frames the gateway
// writes for read receipts and the conversation list are what
// protocol.schema.json defines.
func TestReceiptAndConversationsFramesMatchSchema(t *testing.T) {
	s := serverSchema(t)
	rec := &imv1.SequencedRecord{ConversationId: "dm:alice:bob", SenderUserId: "bob", SenderDeviceId: "phone",
		Body: &imv1.SequencedRecord_ReadReceipt{ReadReceipt: &imv1.ReadReceipt{UserId: "bob", ReadSeq: 42}}}
	f := ReceiptFrame(rec)
	if want := `{"type":"receipt","conversation_id":"dm:alice:bob","user_id":"bob","seq":42}`; string(f) != want {
		t.Errorf("receipt frame %s, want %s", f, want)
	}
	for _, b := range [][]byte{f,
		encode(conversationsFrame{Type: "conversations", Conversations: []historyapi.ConversationState{}}),
		encode(conversationsFrame{Type: "conversations", Conversations: []historyapi.ConversationState{
			{ConversationID: "g:team", LastSeq: 7, ReadSeq: 0, Unread: 3}}}),
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("%s does not match the schema: %v", b, err)
		}
	}
	if f := ReceiptFrame(&imv1.SequencedRecord{Body: &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{}}}); f != nil {
		t.Errorf("a rejection made a receipt frame %s", f)
	}
}
