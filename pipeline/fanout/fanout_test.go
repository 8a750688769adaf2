package fanout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/presence"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const partitions = 4

type env struct {
	t      *testing.T
	topics kafkawire.Topics
	seq    sarama.SyncProducer
}

func newEnv(t *testing.T, gateways ...string) *env {
	t.Helper()
	topics := kafkawire.PrefixedTopics(stacktest.Name(t, "fan"))
	layout := kafkawire.Layout{Partitions: partitions}
	specs := kafkawire.CoreSpecs(topics, layout)
	for _, gw := range gateways {
		specs = append(specs, kafkawire.GatewaySpec(topics, layout, gw))
	}
	stacktest.CreateTopics(t, specs...)
	cfg := stacktest.Kafka(t)
	seq, err := sarama.NewSyncProducer(cfg.BrokerList(), cfg.TransactionalProducerConfig(stacktest.Name(t, "seq")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seq.Close() })
	return &env{t: t, topics: topics, seq: seq}
}

// announce writes presence records as gateways do.
func (e *env) announce(ps ...*imv1.Presence) {
	e.t.Helper()
	p := stacktest.Kafka(e.t).NewProducer(e.topics.Presence)
	defer p.Close()
	var msgs []kafka.Message
	for _, pr := range ps {
		pr.Version = imv1.Version
		b, err := imv1.Marshal(pr)
		if err != nil {
			e.t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(presence.Key(pr.UserId, pr.DeviceId)), Value: b})
	}
	if err := p.Write(context.Background(), msgs...); err != nil {
		e.t.Fatal(err)
	}
}

// sequence writes entries as the sequencer does: transactional, each on
// its conversation's partition.
func (e *env) sequence(rs ...*imv1.SequencedRecord) {
	e.t.Helper()
	e.sequenceTo(e.topics.Sequenced, partitions, rs...)
}

// sequenceTo writes entries to a sequenced topic of n partitions.
func (e *env) sequenceTo(topic string, n int, rs ...*imv1.SequencedRecord) {
	e.t.Helper()
	if err := e.seq.BeginTxn(); err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rs {
		r.Version = imv1.Version
		b, err := imv1.Marshal(r)
		if err != nil {
			e.t.Fatal(err)
		}
		p := int32(kafkawire.PartitionFor([]byte(r.ConversationId), n))
		if _, _, err := e.seq.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p,
			Key: sarama.StringEncoder(r.ConversationId), Value: sarama.ByteEncoder(b)}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.seq.CommitTxn(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start() (stop func()) {
	e.t.Helper()
	f := e.newFanout(1)
	if f.Ready(context.Background()) == nil {
		e.t.Fatal("a fanout that has not started says it is ready")
	}
	stop = stacktest.Run(e.t, "fanout", f.Run)
	// Ready only once in a group session with every claimed partition's
	// membership periods restored.
	stacktest.Eventually(e.t, time.Minute, "fanout ready", func() bool { return f.Ready(context.Background()) == nil })
	return stop
}

// newFanout is a fanout of generation g of the env's topics.
func (e *env) newFanout(g uint32) *fanout.Fanout {
	e.t.Helper()
	f, err := fanout.New(fanout.Config{Kafka: stacktest.Kafka(e.t), Topics: e.topics, Generation: g, GroupID: e.topics.Sequenced + ".fanout",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// deliveries reads the gateways' topics and collects, per (gateway, conv,
// seq or notice), the recipient devices; a repeated delivery (at least once)
// must name the same devices.
type deliveries struct {
	mu      sync.Mutex
	got     map[string]string
	seqs    map[string][]uint64 // gateway + conversation -> seqs in arrival order
	changed chan struct{}
	errs    []string
}

func (e *env) read(gateways ...string) *deliveries {
	e.t.Helper()
	d := &deliveries{got: map[string]string{}, seqs: map[string][]uint64{}, changed: make(chan struct{}, 1)}
	for _, gw := range gateways {
		stacktest.Follow(e.t, e.topics.Gateway(gw), partitions, func(m *sarama.ConsumerMessage) { d.add(gw, m) })
	}
	return d
}

func (d *deliveries) add(gw string, m *sarama.ConsumerMessage) {
	gd := &imv1.GatewayDelivery{}
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}()
	if err := imv1.Unmarshal(m.Value, gd); err != nil {
		d.errs = append(d.errs, err.Error())
		return
	}
	var devs []string
	for _, r := range gd.Recipients {
		devs = append(devs, r.UserId+"/"+r.DeviceId)
	}
	sort.Strings(devs)
	k := fmt.Sprintf("%s %s #%d %s", gw, gd.Record.ConversationId, gd.Record.Seq, gd.Record.ClientMsgId)
	v := strings.Join(devs, ",")
	if prev, ok := d.got[k]; ok && prev != v {
		d.errs = append(d.errs, fmt.Sprintf("%s delivered to %s and again to %s", k, prev, v))
	}
	d.got[k] = v
	if gd.Record.Seq > 0 {
		gc := gw + " " + gd.Record.ConversationId
		d.seqs[gc] = append(d.seqs[gc], gd.Record.Seq)
	}
}

// expect waits until every wanted delivery arrived, then checks there is
// nothing else.
func (d *deliveries) expect(t *testing.T, want map[string]string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		d.mu.Lock()
		done := true
		for k := range want {
			if _, ok := d.got[k]; !ok {
				done = false
			}
		}
		d.mu.Unlock()
		if done {
			break
		}
		select {
		case <-d.changed:
		case <-deadline:
			d.mu.Lock()
			defer d.mu.Unlock()
			t.Fatalf("deliveries missing after a minute:\ngot  %v\nwant %v", d.got, want)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) > 0 {
		t.Fatal(d.errs)
	}
	for k, v := range want {
		if d.got[k] != v {
			t.Errorf("%s went to %q, want %q", k, d.got[k], v)
		}
	}
	for k, v := range d.got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected delivery %s to %s", k, v)
		}
	}
}

func msg(conv string, seq uint64, sender string) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{ConversationId: conv, Seq: seq, SenderUserId: sender, SenderDeviceId: "phone",
		ClientMsgId: fmt.Sprintf("m%d", seq), Body: &imv1.SequencedRecord_Message{Message: &imv1.ChatMessage{}}}
}

func member(conv string, seq uint64, kind imv1.MembershipEvent_Kind, users ...string) *imv1.SequencedRecord {
	return &imv1.SequencedRecord{ConversationId: conv, Seq: seq, SenderUserId: users[0], SenderDeviceId: "phone",
		ClientMsgId: fmt.Sprintf("m%d", seq), Body: &imv1.SequencedRecord_Membership{Membership: &imv1.MembershipEvent{Kind: kind, UserIds: users}}}
}

func online(user, device, gw string, epoch uint64) *imv1.Presence {
	return &imv1.Presence{UserId: user, DeviceId: device, GatewayId: gw, Epoch: epoch, Online: true}
}

// TestRoutesByMembershipAndPresence: every entry reaches exactly the
// connected devices of its recipients, once per gateway; membership applies
// from its seq (I4); notices reach the sending device only; a gateway that
// is gone does not stall routing; after a restart the membership periods are
// restored, not rebuilt from scratch.
func TestRoutesByMembershipAndPresence(t *testing.T) {
	e := newEnv(t, "a", "b")
	e.announce(
		online("alice", "phone", "a", 1), online("alice", "web", "b", 1),
		online("bob", "phone", "a", 1), online("carol", "phone", "b", 1),
		online("erin", "phone", "gone", 1), // its gateway's topic does not exist
		online("dave", "phone", "b", 1), &imv1.Presence{UserId: "dave", DeviceId: "phone", GatewayId: "b", Epoch: 1},
	)
	got := e.read("a", "b")
	stop := e.start()
	g, dm := "g:team", "dm:alice:carol"
	rejection := &imv1.SequencedRecord{ConversationId: g, SenderUserId: "alice", SenderDeviceId: "phone", ClientMsgId: "r1",
		Body: &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{Code: "not_member"}}}
	toDave := &imv1.SequencedRecord{ConversationId: g, SenderUserId: "dave", SenderDeviceId: "phone", ClientMsgId: "r2",
		Body: &imv1.SequencedRecord_Rejection{Rejection: &imv1.Rejection{Code: "not_member"}}}
	e.sequence(
		member(g, 1, imv1.MembershipEvent_CREATED, "alice", "bob", "erin"),
		msg(g, 2, "alice"),
		member(g, 3, imv1.MembershipEvent_JOINED, "carol"),
		msg(g, 4, "bob"),
		member(g, 5, imv1.MembershipEvent_LEFT, "bob"),
		msg(g, 6, "carol"),
		rejection, toDave,
		msg(dm, 1, "alice"),
	)
	ab := "alice/phone,bob/phone"
	want := map[string]string{
		"a g:team #1 m1": ab, "b g:team #1 m1": "alice/web",
		"a g:team #2 m2": ab, "b g:team #2 m2": "alice/web",
		"a g:team #3 m3": ab, "b g:team #3 m3": "alice/web,carol/phone",
		"a g:team #4 m4": ab, "b g:team #4 m4": "alice/web,carol/phone",
		"a g:team #5 m5": ab, "b g:team #5 m5": "alice/web,carol/phone", // bob sees his leave
		"a g:team #6 m6": "alice/phone", "b g:team #6 m6": "alice/web,carol/phone", // and nothing after
		"a g:team #0 r1":         "alice/phone", // the notice reaches the sending device only; dave is offline
		"a dm:alice:carol #1 m1": "alice/phone", "b dm:alice:carol #1 m1": "alice/web,carol/phone",
	}
	got.expect(t, want)

	// Restart: bob rejoins; the periods restored must route seq 8 to him
	// and the rest exactly as before.
	stop()
	e.sequence(member(g, 7, imv1.MembershipEvent_JOINED, "bob"), msg(g, 8, "bob"))
	e.start()
	want["a g:team #7 m7"], want["b g:team #7 m7"] = ab, "alice/web,carol/phone"
	want["a g:team #8 m8"], want["b g:team #8 m8"] = ab, "alice/web,carol/phone"
	got.expect(t, want)
}
