package repartition_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/repartition"
)

// startGenerations runs a sequencer, a fanout and a history sink of each
// generation, in this process, until the test ends.
func startGenerations(t *testing.T, cfg repartition.Config, gens ...uint32) {
	t.Helper()
	conn, db := stacktest.ClickHouse(t)
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gens {
		s, err := sequencer.New(sequencer.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.SequencerGroup})
		if err != nil {
			t.Fatal(err)
		}
		stacktest.Run(t, fmt.Sprintf("sequencer generation %d", g), s.Run)
		f, err := fanout.New(fanout.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.FanoutGroup})
		if err != nil {
			t.Fatal(err)
		}
		stacktest.Run(t, fmt.Sprintf("fanout generation %d", g), f.Run)
		h, err := history.New(history.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.HistoryGroup, Store: store,
			BatchMaxWait: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		stacktest.Run(t, fmt.Sprintf("history sink generation %d", g), h.Run)
	}
}

func send(t *testing.T, raw string, from, to uint64) {
	t.Helper()
	var msgs []kafka.Message
	for cs := from; cs <= to; cs++ {
		b, err := imv1.Marshal(&imv1.RawRecord{Version: imv1.Version, ConversationId: "dm:rp-a:rp-b", ClientMsgId: fmt.Sprintf("m%d", cs),
			SenderUserId: "rp-a", SenderDeviceId: "d", ClientSeq: cs, ReceivedAtMs: time.Now().UnixMilli(), Origin: "test",
			Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("hi")}}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte("dm:rp-a:rp-b"), Value: b})
	}
	p := stacktest.Kafka(t).NewProducer(raw)
	defer p.Close()
	if err := p.Write(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// TestRunKilledAfterEveryStep repartitions 4 -> 8 with running sequencers
// fanouts and history sinks of both generations, stopping the tool after every single step (as a
// kill would) and starting a new one: it always goes on where the last one
// stopped, and the conversation's seqs continue in the new generation.
func TestRunKilledAfterEveryStep(t *testing.T) {
	base := kafkawire.PrefixedTopics(stacktest.Name(t, "rp"))
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(base, kafkawire.Layout{Partitions: 4})...)
	out := &stacktest.SyncBuffer{}
	cfg := repartition.Config{Kafka: stacktest.Kafka(t), Topics: base, ControlTopic: base.Raw + ".control",
		SequencerGroup: base.Raw + ".sequencer", FanoutGroup: base.Raw + ".fanout", HistoryGroup: base.Raw + ".history",
		Quiet: time.Second, Poll: 100 * time.Millisecond, Out: out}
	startGenerations(t, cfg, 1, 2)
	send(t, base.Raw, 1, 3)

	tool := func() *repartition.Tool {
		t.Helper()
		r, err := repartition.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	if err := tool().Run(context.Background(), 0); err == nil {
		t.Fatal("a repartition to 0 partitions: no error")
	}
	var steps []generation.Step
	for runs := 1; ; runs++ {
		if runs > 500 {
			t.Fatalf("no end after %d runs; steps %v\n%s", runs, steps, out)
		}
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.AfterStep = func(s generation.Step) {
			steps = append(steps, s)
			cancel() // one step per run
		}
		r, err := repartition.New(c) // a new process each time
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(ctx, 8)
		r.Close()
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: %v\n%s", runs, err, out)
		}
	}
	t.Logf("steps, one per run: %v", steps)
	seen := map[generation.Step]bool{}
	for _, s := range steps {
		seen[s] = true
	}
	for _, s := range []generation.Step{generation.CreateTopics, generation.PublishPrepared, generation.PublishWriting,
		generation.WriteFences, generation.PublishImported, generation.PublishRetired} {
		if !seen[s] {
			t.Errorf("step %v never taken", s)
		}
	}
	// Again: nothing to do. And the status says so.
	if err := tool().Run(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	if err := tool().Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"fences committed 4/4", "partitions imported 8/8 by the sequencers and 8/8 by the fanouts", "done: generation 2, 8 partitions",
		"generation 1: 4 partitions, retired", "generation 2: 8 partitions, sequencing", "no repartition in progress"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
	// The conversation goes on in generation 2 where it was.
	g2 := generation.Topics(base, 2)
	send(t, g2.Raw, 4, 6)
	for _, m := range stacktest.ReadCommitted(t, g2.Sequenced, 3, time.Minute) {
		r := &imv1.SequencedRecord{}
		if err := imv1.Unmarshal(m.Value, r); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d", r.Seq); r.ClientMsgId != want {
			t.Errorf("generation 2 gave %s seq %d", r.ClientMsgId, r.Seq)
		}
	}
}

// TestRunWithServicesFollowingControl repartitions 4 -> 8 with the
// sequencer, fanout and history services as cmd/ runs them: each follows
// the control topic and runs an instance per generation (control.Serve),
// started with generation 1 alone. The tool finishes only because they
// start generation 2's instances on their own when it is prepared; once
// generation 1 is retired its fanout and sink stop (its sequencer keeps
// forwarding), and the conversation goes on in generation 2, stored by
// generation 2's sink.
func TestRunWithServicesFollowingControl(t *testing.T) {
	base := kafkawire.PrefixedTopics(stacktest.Name(t, "rp"))
	stacktest.CreateTopics(t, kafkawire.CoreSpecs(base, kafkawire.Layout{Partitions: 4})...)
	out := &stacktest.SyncBuffer{}
	cfg := repartition.Config{Kafka: stacktest.Kafka(t), Topics: base, ControlTopic: base.Raw + ".control",
		SequencerGroup: base.Raw + ".sequencer", FanoutGroup: base.Raw + ".fanout", HistoryGroup: base.Raw + ".history",
		Quiet: time.Second, Poll: 100 * time.Millisecond, Out: out}
	conn, db := stacktest.ClickHouse(t)
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		name string
		want func(*imv1.Generation) bool
		new  func(gen uint32) (control.Component, error)
	}
	services := map[string]*control.Instances{}
	stops := map[string]func(){}
	start := func(svc service) {
		f := control.NewFollower(control.FollowerConfig{Kafka: cfg.Kafka, Topic: cfg.ControlTopic, Topics: base, Poll: 100 * time.Millisecond})
		stopFollower := stacktest.Run(t, svc.name+" follower", f.Run)
		in := &control.Instances{Follower: f, Want: svc.want, Registerer: prometheus.NewRegistry(),
			New: func(gen *imv1.Generation, _ prometheus.Registerer) (control.Component, error) { return svc.new(gen.Id) }}
		c, err := control.Serve(0, in)
		if err != nil {
			t.Fatal(err)
		}
		stop := stacktest.Run(t, svc.name, c.Run)
		services[svc.name], stops[svc.name] = in, func() { stop(); stopFollower() }
	}
	specs := []service{
		{"sequencer", control.Existing, func(g uint32) (control.Component, error) {
			return sequencer.New(sequencer.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.SequencerGroup})
		}},
		{"fanout", control.Live, func(g uint32) (control.Component, error) {
			return fanout.New(fanout.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.FanoutGroup})
		}},
		{"history", control.Live, func(g uint32) (control.Component, error) {
			return history.New(history.Config{Kafka: cfg.Kafka, Topics: cfg.Topics, Generation: g, GroupID: cfg.HistoryGroup, Store: store,
				BatchMaxWait: 20 * time.Millisecond})
		}},
	}
	for _, svc := range specs {
		start(svc)
	}
	send(t, base.Raw, 1, 3)

	r, err := repartition.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.Run(ctx, 8); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	running := func(name string, want ...uint32) {
		t.Helper()
		stacktest.Eventually(t, 30*time.Second, fmt.Sprintf("%s instances of generations %v", name, want), func() bool {
			got := services[name].Running()
			slices.Sort(got)
			return slices.Equal(got, want)
		})
	}
	running("sequencer", 1, 2)
	running("fanout", 2)
	running("history", 2)

	g2 := generation.Topics(base, 2)
	send(t, g2.Raw, 4, 6)
	for _, m := range stacktest.ReadCommitted(t, g2.Sequenced, 3, time.Minute) {
		r := &imv1.SequencedRecord{}
		if err := imv1.Unmarshal(m.Value, r); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d", r.Seq); r.ClientMsgId != want {
			t.Errorf("generation 2 gave %s seq %d", r.ClientMsgId, r.Seq)
		}
	}
	stacktest.Eventually(t, time.Minute, "history holding seqs 1-6", func() bool {
		return strings.TrimSpace(stacktest.ClickHouseQuery(t, fmt.Sprintf(
			"SELECT groupArray(seq) FROM (SELECT seq FROM %s.messages FINAL WHERE conversation_id = 'dm:rp-a:rp-b' ORDER BY seq)", db))) == "[1,2,3,4,5,6]"
	})

	// imctl repartition cleanup: generation 1 is deleted, its sequencer
	// instance stops, its partitioned topics go (a late write to its raw
	// topic fails), and generation 2 goes on.
	if err := r.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	running("sequencer", 2)
	g1 := generation.Topics(base, 1)
	md, err := stacktest.Admin(t).DescribeTopics([]string{g1.Raw, g1.Sequenced, g1.SequencerState, g1.FanoutMembers, base.Presence})
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range md {
		gone := errors.Is(tm.Err, sarama.ErrUnknownTopicOrPartition)
		if want := tm.Name != base.Presence; gone != want {
			t.Errorf("after cleanup topic %s gone=%v, want %v (%v)", tm.Name, gone, want, tm.Err)
		}
	}
	client, err := sarama.NewClient(cfg.Kafka.BrokerList(), cfg.Kafka.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	g, _, err := control.Read(ctx, client, cfg.ControlTopic, base.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if phase := g.GetGenerations()[0].Phase; phase != generation.Deleted {
		t.Errorf("generation 1 after cleanup: %v, want deleted", phase)
	}
	late, err := sarama.NewSyncProducer(cfg.Kafka.BrokerList(), cfg.Kafka.IdempotentProducerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if _, _, err := late.SendMessage(&sarama.ProducerMessage{Topic: g1.Raw, Value: sarama.StringEncoder("late")}); err == nil {
		t.Error("a write to generation 1's raw topic after cleanup was acknowledged")
	}
	send(t, g2.Raw, 7, 7)
	stacktest.Eventually(t, time.Minute, "history holding seq 7", func() bool {
		return strings.TrimSpace(stacktest.ClickHouseQuery(t, fmt.Sprintf(
			"SELECT max(seq) FROM %s.messages FINAL WHERE conversation_id = 'dm:rp-a:rp-b'", db))) == "7"
	})
	before := out.String()
	if err := r.Cleanup(ctx); err != nil || !strings.Contains(strings.TrimPrefix(out.String(), before), "nothing to clean up") {
		t.Errorf("cleanup again: %v\n%s", err, strings.TrimPrefix(out.String(), before))
	}

	// Restarted without generation 1's topics (a chaos run's sequencer
	// waited for them forever), the services take generation 2 on.
	for _, svc := range specs {
		stops[svc.name]()
		start(svc)
	}
	for _, name := range []string{"sequencer", "fanout", "history"} {
		stacktest.Eventually(t, time.Minute, name+" ready again", func() bool { return services[name].Ready(ctx) == nil })
	}
	send(t, g2.Raw, 8, 8)
	stacktest.Eventually(t, time.Minute, "history holding seq 8", func() bool {
		return strings.TrimSpace(stacktest.ClickHouseQuery(t, fmt.Sprintf(
			"SELECT max(seq) FROM %s.messages FINAL WHERE conversation_id = 'dm:rp-a:rp-b'", db))) == "8"
	})
}
