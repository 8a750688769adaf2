package history_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// receipt is the sequencer's read receipt: user has read conv up to seq.
func receipt(conv, user string, seq uint64) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: fmt.Sprintf("read-%d", seq),
		SenderUserId: user, SenderDeviceId: "tablet", SequencedAtMs: baseMs + 5,
		Body: &imv1.SequencedRecord_ReadReceipt{ReadReceipt: &imv1.ReadReceipt{UserId: user, ReadSeq: seq}}}
}

// sentBy is message with a sender.
func sentBy(conv string, seq uint64, user string) *imv1.SequencedRecord {
	r := message(conv, seq, fmt.Sprintf("%s says %d", user, seq))
	r.SenderUserId = user
	return r
}

func TestReadRowOf(t *testing.T) {
	r := receipt("dm:alice:bob", "bob", 3)
	r.Epoch = 7
	got, ok := history.ReadRowOf(r)
	want := history.ReadRow{ConversationID: "dm:alice:bob", UserID: "bob", Epoch: 7, ReadSeq: 3, DeviceID: "tablet", SequencedAtMs: uint64(baseMs + 5)}
	if !ok || got != want {
		t.Errorf("ReadRowOf = %+v %v, want %+v", got, ok, want)
	}
	for name, r := range map[string]*imv1.SequencedRecord{
		"a message":            message("g:a", 1, "x"),
		"a rejection":          notice("g:a"),
		"a receipt with a seq": func() *imv1.SequencedRecord { r := receipt("g:a", "bob", 3); r.Seq = 4; return r }(),
		"a receipt of seq 0":   receipt("g:a", "bob", 0),
		"a receipt of nobody":  receipt("g:a", "", 2),
	} {
		if row, ok := history.ReadRowOf(r); ok {
			t.Errorf("%s: read row %+v", name, row)
		}
	}
}

// TestCountReads: n counts the members at each seq but its sender, k those
// of them read at or past it.
func TestCountReads(t *testing.T) {
	periods := map[string][]history.Period{
		"ann":  {{From: 1, To: history.Open}},
		"bob":  {{From: 1, To: 4}},            // left at 4
		"cat":  {{From: 3, To: history.Open}}, // joined at 3
		"dan":  {{From: 1, To: 2}, {From: 5, To: history.Open}},
		"gone": {{From: 1, To: 1}},
	}
	reads := map[string]uint64{"ann": 6, "bob": 4, "cat": 3, "dan": 6}
	msgs := []history.ReadCount{{Seq: 2, Sender: "ann"}, {Seq: 3, Sender: "bob"}, {Seq: 4, Sender: "cat"}, {Seq: 6, Sender: "dan"}}
	got := history.CountReads(msgs, periods, reads)
	want := []history.ReadCount{
		{Seq: 2, Sender: "ann", ReadBy: 2, Members: 2}, // bob, dan
		{Seq: 3, Sender: "bob", ReadBy: 2, Members: 2}, // ann, cat
		{Seq: 4, Sender: "cat", ReadBy: 2, Members: 2}, // ann, bob
		{Seq: 6, Sender: "dan", ReadBy: 1, Members: 2}, // ann (read), cat (at 3)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountReads\n got %+v\nwant %+v", got, want)
	}
}

// TestReadPositionsThroughTheSink, against the real broker and ClickHouse:
// receipts go into read_positions; a receipt replayed or written late with
// a lower seq never moves a position back; the conversation list counts
// the unread messages of others within the user's periods; "read by k of
// n" counts what the members marked, and only for members.
func TestReadPositionsThroughTheSink(t *testing.T) {
	const partitions = 2
	topics := newTopics(t, partitions)
	store, _, _ := newStore(t)
	w := newSeqWriter(t, topics, partitions)
	const dm, g = "dm:alice:bob", "g:team"
	var msgs []*sarama.ProducerMessage
	add := func(rs ...*imv1.SequencedRecord) {
		for _, r := range rs {
			msgs = append(msgs, w.message(r))
		}
	}
	// dm: alice 1, 2, bob 3, alice 4, 5; bob read 4, alice read 3.
	add(sentBy(dm, 1, "alice"), sentBy(dm, 2, "alice"), sentBy(dm, 3, "bob"), sentBy(dm, 4, "alice"), sentBy(dm, 5, "alice"),
		receipt(dm, "bob", 2), receipt(dm, "bob", 4), receipt(dm, "alice", 3), receipt(dm, "bob", 1))
	// group: ann created it with bob and cat (1); ann 2, bob 3, cat left (4),
	// ann 5, dan joined (6), bob 7.
	created := membership(g, 1, imv1.MembershipEvent_CREATED, "team", "ann", "bob", "cat")
	created.SenderUserId = "ann"
	add(created, sentBy(g, 2, "ann"), sentBy(g, 3, "bob"), membership(g, 4, imv1.MembershipEvent_LEFT, "", "cat"),
		sentBy(g, 5, "ann"), membership(g, 6, imv1.MembershipEvent_JOINED, "", "dan"), sentBy(g, 7, "bob"),
		receipt(g, "bob", 5), receipt(g, "cat", 3), receipt(g, "dan", 7), receipt(g, "ann", 2))
	w.commit(msgs...)
	w.commit(w.message(receipt(dm, "bob", 3))) // late and lower: no effect

	s := startSink(t, topics, store, nil)
	ctx := context.Background()
	stacktest.Eventually(t, time.Minute, "every receipt stored", func() bool {
		return stacktest.Gathered(t, s.reg, "seqchat_history_records_total", "outcome", "read_receipt") >= 9 &&
			stacktest.Gathered(t, s.reg, "seqchat_history_records_total", "outcome", "entry") >= 12
	})
	pos, err := store.ReadPositions(ctx, dm)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"alice": 3, "bob": 4}; !reflect.DeepEqual(pos, want) {
		t.Errorf("dm read positions %v, want %v (never backwards)", pos, want)
	}

	states := func(user string) []history.ConversationState {
		t.Helper()
		st, err := store.ConversationStates(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for user, want := range map[string][]history.ConversationState{
		// alice read 3: alice's own 4 and 5 are not unread.
		"alice": {{ConversationID: dm, LastSeq: 5, ReadSeq: 3, Unread: 0}},
		// bob read 4: alice's 5.
		"bob": {{ConversationID: dm, LastSeq: 5, ReadSeq: 4, Unread: 1}, {ConversationID: g, LastSeq: 7, ReadSeq: 5, Unread: 0}},
		// ann read 2: bob's 3 and 7 (cat's leave and dan's join are no messages).
		"ann": {{ConversationID: g, LastSeq: 7, ReadSeq: 2, Unread: 2}},
		// cat left at 4, read 3: nothing after its leave counts.
		"cat": {{ConversationID: g, LastSeq: 4, ReadSeq: 3, Unread: 0}},
		// dan joined at 6 and read 7.
		"dan": {{ConversationID: g, LastSeq: 7, ReadSeq: 7, Unread: 0}},
		"eve": {},
	} {
		if got := states(user); !reflect.DeepEqual(got, want) {
			t.Errorf("%s's conversations\n got %+v\nwant %+v", user, got, want)
		}
	}

	counts, err := history.ReadCountsOf(ctx, store, history.ReadRequest{ConversationID: g, User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	want := []history.ReadCount{
		{Seq: 2, Sender: "ann", ReadBy: 2, Members: 2}, // bob 5, cat 3
		{Seq: 3, Sender: "bob", ReadBy: 1, Members: 2}, // cat 3; ann 2 not
		{Seq: 5, Sender: "ann", ReadBy: 1, Members: 1}, // bob 5 (cat left, dan not yet)
		{Seq: 7, Sender: "bob", ReadBy: 1, Members: 2}, // dan 7; ann 2 not
	}
	if !reflect.DeepEqual(counts.Counts, want) || counts.NextAfterSeq != 7 {
		t.Errorf("read counts\n got %+v\nwant %+v", counts, want)
	}
	// cat sees its period only (through its leave at 4); a page of one.
	if c, err := history.ReadCountsOf(ctx, store, history.ReadRequest{ConversationID: g, User: "cat", AfterSeq: 2, Limit: 1}); err != nil ||
		!reflect.DeepEqual(c.Counts, want[1:2]) || c.NextAfterSeq != 3 {
		t.Errorf("cat's page: %+v %v", c, err)
	}
	if c, err := history.ReadCountsOf(ctx, store, history.ReadRequest{ConversationID: g, User: "cat", AfterSeq: 3}); err != nil || len(c.Counts) != 0 {
		t.Errorf("cat after its leave: %+v %v", c, err)
	}
	if c, err := history.ReadCountsOf(ctx, store, history.ReadRequest{ConversationID: dm, User: "alice"}); err != nil ||
		len(c.Counts) != 5 || c.Counts[3] != (history.ReadCount{Seq: 4, Sender: "alice", ReadBy: 1, Members: 1}) ||
		c.Counts[4] != (history.ReadCount{Seq: 5, Sender: "alice", ReadBy: 0, Members: 1}) {
		t.Errorf("dm counts: %+v %v", c, err)
	}
	for _, req := range []history.ReadRequest{{ConversationID: g, User: "eve"}, {ConversationID: dm, User: "eve"}} {
		var e *history.Error
		if _, err := history.ReadCountsOf(ctx, store, req); !errors.As(err, &e) || e.Code != history.CodeNotMember {
			t.Errorf("%s reading %s: %v, want not_member", req.User, req.ConversationID, err)
		}
	}

	// The same through the API, in its JSON.
	srv := serve(t, store)
	auth := "Bearer " + testToken
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/v1/users/bob/unread", 200, `{"conversations":[{"conversation_id":"dm:alice:bob","last_seq":5,"read_seq":4,"unread":1},` +
			`{"conversation_id":"g:team","last_seq":7,"read_seq":5,"unread":0}]}`},
		{"/v1/users/eve/unread", 200, `{"conversations":[]}`},
		{"/v1/users/e%20ve/unread", 400, ""},
		{"/v1/conversations/g:team/reads?user=cat&after_seq=2&limit=1", 200,
			`{"conversation_id":"g:team","reads":[{"seq":3,"sender_user_id":"bob","read_by":1,"members":2}],"complete_up_to":7,"next_after_seq":3}`},
		{"/v1/conversations/g:team/reads?user=eve", 403, ""},
		{"/v1/conversations/g:team/reads?user=ann&limit=0", 400, ""},
	} {
		status, body := get(t, srv.URL, "GET", c.path, auth)
		if status != c.status || (c.body != "" && string(body) != c.body+"\n") {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, status, body, c.status, c.body)
		}
	}
}
