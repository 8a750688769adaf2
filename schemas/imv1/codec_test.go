package imv1

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestRoundTrip(t *testing.T) {
	in := &SequencedRecord{
		Version:        Version,
		ConversationId: "g:1",
		Seq:            7,
		MsgId:          "m7",
		Body:           &SequencedRecord_Message{Message: &ChatMessage{ContentType: "text/plain", Body: []byte("hi")}},
	}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out SequencedRecord
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatalf("round trip changed the record:\n in  %v\n out %v", in, &out)
	}
}

// TestCursorOpenRangesRoundTrip: a device cursor keeps its open client_seq
// ranges (the sequencer's exact dedup past the recent window) through the
// state store's encoding, in order.
func TestCursorOpenRangesRoundTrip(t *testing.T) {
	in := &StateEntry{Version: Version, Entry: &StateEntry_Cursor{Cursor: &DeviceCursor{
		ConversationId: "g:1", UserId: "u", DeviceId: "d", LastClientSeq: 40, OpenTracked: true,
		Open: []*ClientSeqRange{{First: 2, Last: 2}, {First: 7, Last: 30}, {First: 39, Last: 39}}}}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out StateEntry
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatalf("round trip changed the entry:\n in  %v\n out %v", in, &out)
	}
	// An entry written before the fields existed reads as untracked.
	old, err := Marshal(&StateEntry{Version: Version, Entry: &StateEntry_Cursor{Cursor: &DeviceCursor{ConversationId: "g:1", LastClientSeq: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(old, &out); err != nil || len(out.GetCursor().GetOpen()) != 0 || out.GetCursor().GetOpenTracked() || out.GetCursor().GetLastClientSeq() != 5 {
		t.Fatalf("old cursor entry: %v, %v", &out, err)
	}
}

func TestVersionChecks(t *testing.T) {
	tests := []struct {
		name  string
		value func(t testing.TB) []byte
		want  error
	}{
		{"missing version", func(t testing.TB) []byte { return mustProto(t, &RawRecord{ConversationId: "g:1"}) }, ErrUnknownVersion},
		{"future version", func(t testing.TB) []byte { return mustProto(t, &RawRecord{Version: Version + 1}) }, ErrUnknownVersion},
		{"not protobuf", func(testing.TB) []byte { return []byte{0xff, 0xff, 0xff} }, ErrMalformed},
		{"truncated", func(t testing.TB) []byte {
			b := mustProto(t, &RawRecord{Version: Version, ConversationId: "g:123456"})
			return b[:len(b)-2]
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Unmarshal(tt.value(t), &RawRecord{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMarshalRefusesWrongVersion(t *testing.T) {
	if _, err := Marshal(&Presence{UserId: "u"}); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("Marshal without version: error = %v, want ErrUnknownVersion", err)
	}
}

// FuzzUnmarshal feeds arbitrary bytes to every record decoder: none may panic,
// and whatever decodes must re-encode and decode to the same record.
func FuzzUnmarshal(f *testing.F) {
	seed, _ := Marshal(&RawRecord{Version: Version, ConversationId: "dm:a:b", ClientSeq: 3,
		Body: &RawRecord_Control{Control: &Control{Op: &Control_Kick{Kick: &Kick{UserId: "x"}}}}})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range []Record{&RawRecord{}, &SequencedRecord{}, &StateEntry{}, &FanoutMembership{}, &GatewayDelivery{}, &Presence{}, &DeadLetter{}} {
			if err := Unmarshal(b, r); err != nil {
				continue
			}
			again, err := Marshal(r)
			if err != nil {
				t.Fatalf("%T decoded but does not re-encode: %v", r, err)
			}
			back := r.ProtoReflect().New().Interface().(Record)
			if err := Unmarshal(again, back); err != nil || !proto.Equal(r, back) {
				t.Fatalf("%T does not survive a second round trip: %v", r, err)
			}
		}
	})
}

func mustProto(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
