package gateway

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/seqchat/seqchat/schemas/historyapi"
)

// TestHistoryFrameCarriesEveryEntryField: an entry read from history
// reaches the client with every field the history API gave, under the same
// name and value (the gateway had its own copy of the entry type, and it
// had drifted).
func TestHistoryFrameCarriesEveryEntryField(t *testing.T) {
	entries := []historyapi.Entry{
		{Seq: 7, Epoch: 1764633600000, MsgID: "m7", SenderUserID: "alice", SenderDeviceID: "phone", ClientMsgID: "c7",
			SequencedAtMs: 1764633600123, PredecessorMissing: true,
			Message: &historyapi.Message{ContentType: "text/plain", Body: "hi"}},
		{Seq: 8, MsgID: "m8", SenderUserID: "alice", SenderDeviceID: "phone", ClientMsgID: "c8",
			SequencedAtMs: 1764633600456, PredecessorMissing: true,
			Event: &historyapi.Event{Kind: "joined", UserIDs: []string{"bob"}, Title: "team"}},
		{Seq: 9, MsgID: "m9", SenderUserID: "alice", SenderDeviceID: "phone", ClientMsgID: "c9",
			SequencedAtMs: 1764633600789, PredecessorMissing: true, Edited: true,
			Message: &historyapi.Message{ContentType: "text/plain", Body: "hi, edited"}},
		{Seq: 10, MsgID: "m10", SenderUserID: "alice", SenderDeviceID: "phone", ClientMsgID: "c10",
			SequencedAtMs: 1764633600999, PredecessorMissing: true, Recalled: true,
			Revision: &historyapi.Revision{Op: "edit", TargetSeq: 7}},
	}
	// Every field is set in some entry, so that a field added to the API
	// is checked here too.
	typ := reflect.TypeOf(historyapi.Entry{})
	for i := range typ.NumField() {
		set := false
		for _, e := range entries {
			set = set || !reflect.ValueOf(e).Field(i).IsZero()
		}
		if !set {
			t.Errorf("no test entry sets %s", typ.Field(i).Name)
		}
	}
	for _, e := range entries {
		want := jsonObject(t, e)
		got := jsonObject(t, historyFrame("g:team", e))
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("entry %d: %s is %v in the frame, %v in history", e.Seq, k, got[k], v)
			}
		}
		if got["type"] != "msg" || got["conversation_id"] != "g:team" {
			t.Errorf("entry %d: frame %v", e.Seq, got)
		}
	}
}

func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
