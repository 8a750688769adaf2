package loadgen_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/analysis/audit"
	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/pipelinetest"
	"github.com/seqchat/seqchat/testsupport/stacktest"
	"github.com/seqchat/seqchat/tools/loadgen"
	"github.com/seqchat/seqchat/tools/repartition"
)

// TestRepartitionUnderLoad repartitions the whole in-process pipeline 4 ->
// 8 -> 4 while devices send and receive (groups and dms over two
// gateways): the sequencer, fanout and history sink of each generation run
// side by side, the old one is fenced mid-load (ingest keeps writing to
// generation 1: the fenced sequencers forward), and every message is
// checked at every device (contiguous, in order, once, sender order kept)
// and in ClickHouse (no gap, no conflicting or repeated entry).
func TestRepartitionUnderLoad(t *testing.T) {
	repartitionUnderLoad(t, false)
}

// TestRepartitionWhileDevicesReconnect is TestRepartitionUnderLoad with
// gateway a stopped right after the first switch: its devices reconnect to
// gateway b and resume while both generations route, and after.
func TestRepartitionWhileDevicesReconnect(t *testing.T) {
	repartitionUnderLoad(t, true)
}

func repartitionUnderLoad(t *testing.T, stopGateway bool) {
	p := pipelinetest.Start(t, pipelinetest.Config{Partitions: 4, Prefix: "rp", ServiceToken: serviceToken, TokenKey: tokenKey})
	urls := []string{p.StartGateway("a").URL(), p.StartGateway("b").URL()}
	gens := []struct {
		id         uint32
		partitions int32
	}{{1, 4}, {2, 8}, {3, 4}}
	// The switches happen once each generation has sequenced this much.
	const switchAfter = 250
	var sequenced [3]atomic.Int64 // entries and notices per generation
	var reached [3]chan struct{}  // closed at switchAfter records
	for i, g := range gens {
		reached[i] = make(chan struct{})
		if g.id > 1 {
			stacktest.CreateTopics(t, generation.Specs(p.Topics, kafkawire.Layout{}, g.id, g.partitions)...)
			sc, fc, hc := p.Sequencer, p.Fanout, p.Sink
			sc.Generation, fc.Generation, hc.Generation = g.id, g.id, g.id
			sc.Logger, fc.Logger, hc.Logger = p.Log.With("service", "sequencer"), p.Log.With("service", "fanout"), p.Log.With("service", "history")
			seq, err := sequencer.New(sc)
			if err != nil {
				t.Fatal(err)
			}
			fan, err := fanout.New(fc)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := history.New(hc)
			if err != nil {
				t.Fatal(err)
			}
			p.Run(fmt.Sprintf("sequencer %d", g.id), seq.Run)
			p.Run(fmt.Sprintf("fanout %d", g.id), fan.Run)
			p.Run(fmt.Sprintf("history sink %d", g.id), sink.Run)
		}
		stacktest.Follow(t, generation.Topics(p.Topics, g.id).Sequenced, g.partitions, func(*sarama.ConsumerMessage) {
			if sequenced[i].Add(1) == switchAfter {
				close(reached[i])
			}
		})
	}
	fenced := make(chan error, 1)
	go func() {
		for i := range 2 {
			select {
			case <-reached[i]:
			case <-time.After(2 * time.Minute):
				fenced <- fmt.Errorf("generation %d sequenced only %d records", gens[i].id, sequenced[i].Load())
				return
			}
			from, to := gens[i], gens[i+1]
			_, err := repartition.WriteFences(p.Kafka, generation.Topics(p.Topics, from.id).Raw, partitionsOf(from.partitions),
				&imv1.Generation{Id: to.id, Partitions: to.partitions})
			if err != nil {
				fenced <- err
				return
			}
			p.Log.Info("fenced", "from", from.id, "to", to.id)
			if stopGateway && i == 0 {
				p.Gateway("a").Stop()
				p.Log.Info("gateway a stopped")
			}
		}
		fenced <- nil
	}()

	gen, err := loadgen.New(loadgen.Config{Gateways: urls, TokenKey: tokenKey, Users: 40, GroupSize: 8, Groups: 6, DMs: 6,
		Rate: 100, Duration: 10 * time.Second, Drain: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res *loadgen.Result
	if stopGateway {
		res = runInBackground(t, gen)()
		c := res.Counts
		if res.Failed() || c.Sends != 1000 || c.Accepted != c.Sends || c.Deliveries != c.ExpectedDeliveries ||
			c.Disconnects < 20 || c.Reconnects != c.Disconnects {
			t.Fatalf("anomalies %v (counts %+v): %q", res.Anomalies, c, res.AnomalyExamples)
		}
		t.Logf("counts %+v", c)
	} else {
		res = runClean(t, gen, 1000)
	}
	select {
	case err := <-fenced:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the load ended before both switches: %d, %d, %d records per generation",
			sequenced[0].Load(), sequenced[1].Load(), sequenced[2].Load())
	}
	t.Logf("sequenced topics' records per generation: %d, %d, %d", sequenced[0].Load(), sequenced[1].Load(), sequenced[2].Load())
	if sequenced[2].Load() == 0 {
		t.Fatal("generation 3 sequenced nothing")
	}

	// ClickHouse holds every entry once, with no gap, whichever generation
	// sequenced it.
	a, err := audit.New(p.ClickHouse, audit.Config{Database: p.Database})
	if err != nil {
		t.Fatal(err)
	}
	var rep *audit.Report
	stacktest.Eventually(t, time.Minute, "history holding every accepted send", func() bool {
		if rep, err = a.Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		return rep.Totals.Entries >= uint64(res.Counts.Accepted) && rep.Totals.MissingSeqs == 0
	})
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if tot := rep.Totals; tot.AnomalousConversations != 0 || tot.MissingSeqs != 0 || tot.ConflictingSeqs != 0 || tot.ReusedClientMsgIDs != 0 ||
		tot.Entries < uint64(res.Counts.Accepted) {
		t.Fatalf("history after the switches (%d sends accepted):\n%s", res.Counts.Accepted, text.String())
	}
	t.Logf("history: %+v", rep.Totals)
}

func partitionsOf(n int32) []int32 {
	out := make([]int32, n)
	for p := range out {
		out[p] = int32(p)
	}
	return out
}

// TestRepartitionUnderLoadFollowingControl is TestRepartitionUnderLoad
// with the services as cmd/ runs them: the sequencer, fanout and history
// sink follow the control topic and run an instance per generation, the
// gateways' ingest writes to the generation it says and settle over every
// live one, and imctl repartition 4 -> 8 runs mid-load with nothing
// started, stopped or restarted by hand. Every message is checked at every
// device and in ClickHouse.
func TestRepartitionUnderLoadFollowingControl(t *testing.T) {
	p := pipelinetest.Start(t, pipelinetest.Config{Partitions: 4, Prefix: "rpc", ServiceToken: serviceToken, TokenKey: tokenKey})
	p.StopSequencer()
	p.StopFanout()
	p.StopSink()
	for _, svc := range []struct {
		name string
		want func(*imv1.Generation) bool
		new  func(gen uint32) (control.Component, error)
	}{
		{"sequencer", control.Existing, func(g uint32) (control.Component, error) {
			c := p.Sequencer
			c.Generation = g
			return sequencer.New(c)
		}},
		{"fanout", control.Live, func(g uint32) (control.Component, error) {
			c := p.Fanout
			c.Generation = g
			return fanout.New(c)
		}},
		{"history sink", control.Live, func(g uint32) (control.Component, error) {
			c := p.Sink
			c.Generation = g
			return history.New(c)
		}},
	} {
		in := &control.Instances{Follower: p.Control, Want: svc.want, Logger: p.Log.With("service", svc.name),
			New: func(gen *imv1.Generation, _ prometheus.Registerer) (control.Component, error) { return svc.new(gen.Id) }}
		p.Run(svc.name+" instances", in.Run)
	}
	urls := []string{p.StartGateway("a").URL(), p.StartGateway("b").URL()}
	const switchAfter = 250
	var sequenced [2]atomic.Int64
	reached := make(chan struct{})
	for i, g := range []struct {
		id         uint32
		partitions int32
	}{{1, 4}, {2, 8}} {
		if g.id > 1 { // imctl creates it; the collector needs it now
			stacktest.CreateTopics(t, generation.Specs(p.Topics, kafkawire.Layout{}, g.id, g.partitions)...)
		}
		stacktest.Follow(t, generation.Topics(p.Topics, g.id).Sequenced, g.partitions, func(*sarama.ConsumerMessage) {
			if sequenced[i].Add(1) == switchAfter && i == 0 {
				close(reached)
			}
		})
	}
	out := &stacktest.SyncBuffer{}
	repartitioned := make(chan error, 1)
	go func() {
		select {
		case <-reached:
		case <-time.After(2 * time.Minute):
			repartitioned <- fmt.Errorf("generation 1 sequenced only %d records", sequenced[0].Load())
			return
		}
		r, err := repartition.New(repartition.Config{Kafka: p.Kafka, Topics: p.Topics, ControlTopic: p.ControlTopic,
			SequencerGroup: p.Sequencer.GroupID, FanoutGroup: p.Fanout.GroupID, HistoryGroup: p.Sink.GroupID,
			Quiet: 2 * time.Second, Poll: 100 * time.Millisecond, Out: out})
		if err != nil {
			repartitioned <- err
			return
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		repartitioned <- r.Run(ctx, 8)
	}()

	gen, err := loadgen.New(loadgen.Config{Gateways: urls, TokenKey: tokenKey, Users: 40, GroupSize: 8, Groups: 6, DMs: 6,
		Rate: 100, Duration: 10 * time.Second, Drain: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res := runClean(t, gen, 1000)
	if err := <-repartitioned; err != nil {
		t.Fatalf("imctl repartition: %v\n%s", err, out)
	}
	t.Logf("imctl repartition:\n%s", out)
	t.Logf("sequenced topics' records per generation: %d, %d", sequenced[0].Load(), sequenced[1].Load())
	if sequenced[1].Load() == 0 {
		t.Fatal("generation 2 sequenced nothing")
	}

	a, err := audit.New(p.ClickHouse, audit.Config{Database: p.Database})
	if err != nil {
		t.Fatal(err)
	}
	var rep *audit.Report
	stacktest.Eventually(t, time.Minute, "history holding every accepted send", func() bool {
		if rep, err = a.Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		return rep.Totals.Entries >= uint64(res.Counts.Accepted) && rep.Totals.MissingSeqs == 0
	})
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if tot := rep.Totals; tot.AnomalousConversations != 0 || tot.MissingSeqs != 0 || tot.ConflictingSeqs != 0 || tot.ReusedClientMsgIDs != 0 ||
		tot.Entries < uint64(res.Counts.Accepted) {
		t.Fatalf("history after the switch (%d sends accepted):\n%s", res.Counts.Accepted, text.String())
	}
	t.Logf("history: %+v", rep.Totals)
}
