package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestSubmitWritesRawRecords submits one send of every kind and reads them
// back: each must be on the raw topic once, keyed by its conversation, on
// the partition PartitionFor predicts, with every field as submitted plus
// the server's receive time and the configured origin; sends of one
// conversation keep their submit order.
func TestSubmitWritesRawRecords(t *testing.T) {
	const partitions = 4
	topic := stacktest.Topic(t, partitions, nil)
	ing := newIngester(t, ingest.Config{Topic: topic, Origin: "gw-7"})

	sends := []ingest.Send{
		{ConversationID: "dm:alice:bob", ClientMsgID: "m-1", SenderUserID: "bob", SenderDeviceID: "phone", ClientSeq: 3,
			Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("hello")}},
		groupSend(createGroup("Launch", "bob", "carol")),
		groupSend(join("dave")),
		groupSend(kick("carol")),
		groupSend(leave()),
		{ConversationID: "g:team", ClientMsgID: "m-6", SenderUserID: "bob", SenderDeviceID: "server",
			Message: &imv1.ChatMessage{ContentType: "application/octet-stream", Body: []byte{0, 1, 0xff}}},
		{ConversationID: "g:other:group", ClientMsgID: "m-7", SenderUserID: "zoe", SenderDeviceID: "web:1", ClientSeq: 1,
			Message: &imv1.ChatMessage{ContentType: "text/plain"}},
		{ConversationID: "dm:alice:bob", ClientMsgID: "read:2", SenderUserID: "alice", SenderDeviceID: "tablet",
			Read: &imv1.ReadMark{Seq: 2}},
	}
	for i := 1; i <= 4; i++ { // the group sends get distinct ids
		sends[i].ClientMsgID = "m-" + string(rune('1'+i))
		sends[i].ClientSeq = uint64(i)
	}

	ctx := context.Background()
	before := time.Now().UnixMilli()
	for _, s := range sends {
		if err := ing.Submit(ctx, s); err != nil {
			t.Fatalf("submit %s: %v", s.ClientMsgID, err)
		}
	}
	after := time.Now().UnixMilli()

	got := readRaw(t, topic, len(sends))
	byID := map[string]rawRecord{}
	for _, r := range got {
		id := r.rec.GetClientMsgId()
		if _, dup := byID[id]; dup {
			t.Fatalf("%s read twice", id)
		}
		byID[id] = r
		checkPlacement(t, r, partitions)
	}
	lastOffset := map[string]int64{}
	for _, s := range sends {
		r, ok := byID[s.ClientMsgID]
		if !ok {
			t.Fatalf("%s not read back", s.ClientMsgID)
		}
		if at := r.rec.GetReceivedAtMs(); at < before || at > after {
			t.Errorf("%s: received_at_ms %d, want the server clock at submit, within [%d, %d]", s.ClientMsgID, at, before, after)
		}
		want := &imv1.RawRecord{Version: imv1.Version, ConversationId: s.ConversationID, ClientMsgId: s.ClientMsgID,
			SenderUserId: s.SenderUserID, SenderDeviceId: s.SenderDeviceID, ClientSeq: s.ClientSeq,
			ReceivedAtMs: r.rec.GetReceivedAtMs(), Origin: "gw-7"}
		switch {
		case s.Message != nil:
			want.Body = &imv1.RawRecord_Message{Message: s.Message}
		case s.Read != nil:
			want.Body = &imv1.RawRecord_Read{Read: s.Read}
		default:
			want.Body = &imv1.RawRecord_Control{Control: s.Control}
		}
		if !proto.Equal(r.rec, want) {
			t.Errorf("%s:\n got %v\nwant %v", s.ClientMsgID, r.rec, want)
		}
		if last, seen := lastOffset[s.ConversationID]; seen && r.offset <= last {
			t.Errorf("%s at offset %d, before the earlier send of %s at %d", s.ClientMsgID, r.offset, s.ConversationID, last)
		}
		lastOffset[s.ConversationID] = r.offset
	}
	if n := recordsIn(t, topic); n != int64(len(sends)) {
		t.Errorf("topic holds %d records, want %d", n, len(sends))
	}
}

// TestConcurrentSubmits: Submit is safe for concurrent use. Senders submit
// at once to one conversation; every send arrives once, and each sender's
// sends keep their order (a Submit returns after the ack, so the next one is
// written after it).
func TestConcurrentSubmits(t *testing.T) {
	const senders, each = 8, 25
	topic := stacktest.Topic(t, 2, nil)
	ing := newIngester(t, ingest.Config{Topic: topic})
	errc := make(chan error, senders)
	for d := 0; d < senders; d++ {
		go func() {
			for i := 1; i <= each; i++ {
				s := groupSend(nil)
				s.Control, s.Message = nil, text("x")
				s.SenderDeviceID = fmt.Sprintf("d%d", d)
				s.ClientMsgID = fmt.Sprintf("d%d-%d", d, i)
				s.ClientSeq = uint64(i)
				if err := ing.Submit(context.Background(), s); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for d := 0; d < senders; d++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]uint64{}
	seen := map[string]bool{}
	for _, r := range readRaw(t, topic, senders*each) {
		id, dev := r.rec.GetClientMsgId(), r.rec.GetSenderDeviceId()
		if seen[id] {
			t.Fatalf("%s read twice", id)
		}
		seen[id] = true
		if cs := r.rec.GetClientSeq(); cs != last[dev]+1 {
			t.Errorf("%s: client_seq %d follows %d in the log", dev, cs, last[dev])
		}
		last[dev] = r.rec.GetClientSeq()
	}
}

// TestSubmitRefusesInvalidSendsWithoutWriting: a refused send returns an
// *Error, writes nothing, and does not disturb the next good send.
func TestSubmitRefusesInvalidSendsWithoutWriting(t *testing.T) {
	topic := stacktest.Topic(t, 2, nil)
	ing := newIngester(t, ingest.Config{Topic: topic})
	ctx := context.Background()

	bad := dmSend()
	bad.ConversationID = "dm:bob:alice"
	notMember := dmSend()
	notMember.SenderUserID = "mallory"
	for want, s := range map[string]ingest.Send{"invalid": bad, "not_member": notMember} {
		var e *ingest.Error
		if err := ing.Submit(ctx, s); !errors.As(err, &e) || e.Code != want {
			t.Fatalf("Submit = %v, want an *Error with code %s", err, want)
		}
	}
	good := dmSend()
	if err := ing.Submit(ctx, good); err != nil {
		t.Fatal(err)
	}
	got := readRaw(t, topic, 1)
	if id := got[0].rec.GetClientMsgId(); id != good.ClientMsgID || got[0].rec.GetOrigin() != "ingest" {
		t.Errorf("read %s from %s, want %s from the default origin ingest", id, got[0].rec.GetOrigin(), good.ClientMsgID)
	}
	if n := recordsIn(t, topic); n != 1 {
		t.Errorf("topic holds %d records, want only the good one", n)
	}
}

// TestSubmitUnavailable: when the broker cannot acknowledge, Submit gives up
// within WriteTimeout with an error wrapping ErrUnavailable.
func TestSubmitUnavailable(t *testing.T) {
	check := func(t *testing.T, ing *ingest.Ingester) {
		t.Helper()
		start := time.Now()
		err := ing.Submit(context.Background(), dmSend())
		if !errors.Is(err, ingest.ErrUnavailable) {
			t.Fatalf("Submit = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Submit took %v with a WriteTimeout of 500ms", d)
		}
	}
	t.Run("no broker", func(t *testing.T) {
		ing, err := ingest.New(ingest.Config{Kafka: kafkawire.Config{Brokers: []string{closedPort(t)}}, WriteTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatalf("New must not need the broker: %v", err)
		}
		defer ing.Close()
		check(t, ing)
	})
	t.Run("missing topic", func(t *testing.T) {
		check(t, newIngester(t, ingest.Config{Topic: stacktest.Name(t, "missing"), WriteTimeout: 500 * time.Millisecond}))
	})
	t.Run("closed", func(t *testing.T) {
		ing := newIngester(t, ingest.Config{Topic: stacktest.Topic(t, 1, nil)})
		if err := ing.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, ing)
	})
	t.Run("caller's context ended", func(t *testing.T) {
		ing := newIngester(t, ingest.Config{Topic: stacktest.Topic(t, 1, nil)})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := ing.Submit(ctx, dmSend()); !errors.Is(err, ingest.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit = %v, want ErrUnavailable wrapping context.Canceled", err)
		}
	})
}

func TestReady(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := newIngester(t, ingest.Config{Topic: stacktest.Topic(t, 3, nil)}).Ready(ctx); err != nil {
		t.Errorf("Ready on an existing topic = %v", err)
	}
	if err := newIngester(t, ingest.Config{Topic: stacktest.Name(t, "missing")}).Ready(ctx); err == nil {
		t.Error("Ready on a missing topic = nil")
	}
}

// TestMetrics: each result counts once per Submit, and only broker writes
// are timed.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ing := newIngester(t, ingest.Config{Topic: stacktest.Topic(t, 1, nil), Registerer: reg})
	ctx := context.Background()
	if err := ing.Submit(ctx, dmSend()); err != nil {
		t.Fatal(err)
	}
	bad := dmSend()
	bad.ClientMsgID = ""
	if err := ing.Submit(ctx, bad); err == nil {
		t.Fatal("Submit accepted an empty client_msg_id")
	}
	ing.Close()
	if err := ing.Submit(ctx, dmSend()); err == nil {
		t.Fatal("Submit after Close succeeded")
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sends := map[string]float64{}
	var produced uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "seqchat_ingest_sends_total":
				sends[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			case "seqchat_ingest_produce_seconds":
				produced = m.GetHistogram().GetSampleCount()
			}
		}
	}
	for _, r := range []string{"accepted", "invalid", "unavailable"} {
		if sends[r] != 1 {
			t.Errorf("sends_total{result=%q} = %v, want 1 (all: %v)", r, sends[r], sends)
		}
	}
	if produced != 1 {
		t.Errorf("produce_seconds has %d samples, want 1", produced)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := ingest.New(ingest.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	for name, cfg := range map[string]ingest.Config{
		"negative limit":          {Limits: ingest.Limits{MaxBodyBytes: -1}},
		"negative write timeout":  {WriteTimeout: -time.Second},
		"origin with a space":     {Origin: "gw 1"},
		"metrics registered once": {Registerer: reg},
	} {
		if ing, err := ingest.New(cfg); err == nil {
			ing.Close()
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	ing, err := ingest.New(ingest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := ing.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
}

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSubmitWritesAgainUntilTheDeadline: a record the producer gave up on
// (here its topic does not exist yet: the producer fails it after its
// metadata retries, as it does through a broker restart) is written again
// until WriteTimeout, and the send is acknowledged once it can be, with
// the record written once.
func TestSubmitWritesAgainUntilTheDeadline(t *testing.T) {
	topic := stacktest.Name(t, "late")
	reg := prometheus.NewRegistry()
	ing := newIngester(t, ingest.Config{Topic: topic, WriteTimeout: time.Minute, Registerer: reg})
	submitted := make(chan error, 1)
	go func() { submitted <- ing.Submit(context.Background(), dmSend()) }()
	stacktest.Eventually(t, 30*time.Second, "the producer giving up on the record", func() bool {
		return stacktest.Gathered(t, reg, "seqchat_ingest_rewrites_total") > 0
	})
	select {
	case err := <-submitted:
		t.Fatalf("Submit returned %v before the topic existed", err)
	default:
	}
	stacktest.CreateTopics(t, kafkawire.TopicSpec{Name: topic, Partitions: 4, ReplicationFactor: 1})
	if err := <-submitted; err != nil {
		t.Fatalf("Submit once the topic exists: %v", err)
	}
	if got := readRaw(t, topic, 1); got[0].rec.ClientMsgId != dmSend().ClientMsgID {
		t.Fatalf("the topic holds %s, want %s", got[0].rec.ClientMsgId, dmSend().ClientMsgID)
	}
	if n := recordsIn(t, topic); n != 1 {
		t.Fatalf("the topic holds %d records, want 1", n)
	}
}
