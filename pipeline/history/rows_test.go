package history_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func TestRowOf(t *testing.T) {
	msg := message("g:x", 3, "hello \x00 bytes")
	msg.PredecessorMissing = true
	created := membership("g:x", 1, imv1.MembershipEvent_CREATED, "Team", "alice", "bob")
	for _, tc := range []struct {
		name string
		rec  *imv1.SequencedRecord
		want history.Row
	}{
		{"message", msg, history.Row{ConversationID: "g:x", Seq: 3, MsgID: "g:x/3", ClientMsgID: "c3", SenderUserID: "alice",
			SenderDeviceID: "phone", ClientSeq: 3, Kind: history.KindMessage, MemberUserIDs: []string{}, ContentType: "text/plain",
			Body: "hello \x00 bytes", PredecessorMissing: true, ReceivedAtMs: uint64(baseMs) + 3, SequencedAtMs: uint64(baseMs) + 4}},
		{"created", created, history.Row{ConversationID: "g:x", Seq: 1, MsgID: "g:x/1", ClientMsgID: "c1", SenderUserID: "alice",
			SenderDeviceID: "phone", ClientSeq: 1, Kind: history.KindCreated, MemberUserIDs: []string{"alice", "bob"}, Title: "Team",
			ReceivedAtMs: uint64(baseMs) + 1, SequencedAtMs: uint64(baseMs) + 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := history.RowOf(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
				t.Errorf("RowOf =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
	edit := entry("g:x", 6)
	edit.Body = &imv1.SequencedRecord_Revision{Revision: &imv1.Revision{TargetSeq: 3,
		Op: &imv1.Revision_Edit{Edit: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("v2")}}}}
	if got, err := history.RowOf(edit); err != nil || got.Kind != history.KindEdit || got.TargetSeq != 3 || got.Body != "v2" || got.ContentType != "text/plain" {
		t.Errorf("edit: %+v %v", got, err)
	}
	recall := entry("g:x", 7)
	recall.Body = &imv1.SequencedRecord_Revision{Revision: &imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}}}
	if got, err := history.RowOf(recall); err != nil || got.Kind != history.KindRecall || got.TargetSeq != 3 || got.Body != "" {
		t.Errorf("recall: %+v %v", got, err)
	}
	for kind, want := range map[imv1.MembershipEvent_Kind]history.Kind{imv1.MembershipEvent_JOINED: history.KindJoined,
		imv1.MembershipEvent_LEFT: history.KindLeft, imv1.MembershipEvent_KICKED: history.KindKicked} {
		if got, err := history.RowOf(membership("g:x", 5, kind, "", "carol")); err != nil || got.Kind != want {
			t.Errorf("RowOf(%v) kind = %q, %v; want %q", kind, got.Kind, err, want)
		}
	}
	negative := message("g:x", 2, "")
	negative.ReceivedAtMs = -5
	if got, err := history.RowOf(negative); err != nil || got.ReceivedAtMs != 0 {
		t.Errorf("a negative clock gives received_at_ms %d (%v), want 0", got.ReceivedAtMs, err)
	}
}

func TestRowOfRefusesNonEntries(t *testing.T) {
	noConv := message("", 1, "x")
	unknownKind := membership("g:x", 2, imv1.MembershipEvent_KIND_UNSPECIFIED, "", "bob")
	rejectionWithSeq := notice("g:x")
	rejectionWithSeq.Seq = 4
	revisionWithoutOp := entry("g:x", 5)
	revisionWithoutOp.Body = &imv1.SequencedRecord_Revision{Revision: &imv1.Revision{TargetSeq: 3}}
	for name, r := range map[string]*imv1.SequencedRecord{
		"notice":           notice("g:x"),
		"no conversation":  noConv,
		"no body":          entry("g:x", 3),
		"unknown kind":     unknownKind,
		"rejection as seq": rejectionWithSeq,
		"revision, no op":  revisionWithoutOp,
	} {
		if _, err := history.RowOf(r); !errors.Is(err, history.ErrNotEntry) {
			t.Errorf("%s: RowOf error %v, want ErrNotEntry", name, err)
		}
	}
	if !history.IsNotice(notice("g:x")) || history.IsNotice(message("g:x", 1, "")) {
		t.Error("IsNotice must be true exactly for seq 0")
	}
}
