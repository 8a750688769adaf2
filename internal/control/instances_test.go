package control_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// TestInstancesFollowTheGenerations: against the real broker, a service
// running an instance per live generation starts generation 2's when it
// is prepared and stops generation 1's when it is retired, without a
// restart, with each instance's metrics labelled by generation and gone
// with it; one running every generation stops none. An instance that
// fails ends the service with its error.
func TestInstancesFollowTheGenerations(t *testing.T) {
	k := stacktest.Kafka(t)
	topics := kafkawire.Topics{Raw: stacktest.Topic(t, 4, nil)}
	controlTopic := stacktest.Name(t, "control")
	stacktest.CreateTopics(t, control.Spec(controlTopic, kafkawire.Layout{}))
	f := control.NewFollower(control.FollowerConfig{Kafka: k, Topic: controlTopic, Topics: topics, Poll: 100 * time.Millisecond})
	stacktest.Run(t, "follower", f.Run)

	events := make(chan string, 16)
	reg := prometheus.NewRegistry()
	newInstance := func(name string) func(*imv1.Generation, prometheus.Registerer) (control.Component, error) {
		return func(gen *imv1.Generation, reg prometheus.Registerer) (control.Component, error) {
			if reg != nil {
				reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "instance_partitions"},
					func() float64 { return float64(gen.Partitions) }))
			}
			return &component{run: func(ctx context.Context) error {
				events <- fmt.Sprintf("%s start %d", name, gen.Id)
				<-ctx.Done()
				events <- fmt.Sprintf("%s stop %d", name, gen.Id)
				return nil
			}}, nil
		}
	}
	live := &control.Instances{Follower: f, Want: control.Live, New: newInstance("live"), Registerer: reg}
	every := &control.Instances{Follower: f, Want: control.Existing, New: newInstance("every")}
	stopLive := stacktest.Run(t, "live instances", live.Run)
	stacktest.Run(t, "every instance", every.Run)
	expect := func(want ...string) {
		t.Helper()
		var got []string
		for range want {
			select {
			case e := <-events:
				got = append(got, e)
			case <-time.After(30 * time.Second):
				t.Fatalf("events %q, want %q", got, want)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
	// metrics waits until the registry holds want: an instance's metrics
	// go once it has returned, a moment after its last event.
	metrics := func(want string) {
		t.Helper()
		var got []string
		stacktest.Eventually(t, 10*time.Second, "metrics "+want, func() bool {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					got = append(got, fmt.Sprintf("%s{generation=%q} %g", mf.GetName(), m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
				}
			}
			return strings.Join(got, "\n")+"\n" == want
		})
	}
	expect("live start 1", "every start 1")
	if err := live.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with generation 1's instance running: %v", err)
	}
	metrics(`instance_partitions{generation="1"} 4` + "\n")

	record := generation.Initial(4)
	publish := func(gen *imv1.Generation, phase imv1.GenerationPhase) {
		t.Helper()
		var err error
		if record, err = generation.WithPhase(record, gen, phase, time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if err := control.Publish(k, controlTopic, record); err != nil {
			t.Fatal(err)
		}
	}
	gen1, gen2 := &imv1.Generation{Id: 1, Partitions: 4}, &imv1.Generation{Id: 2, Partitions: 8}
	publish(gen2, generation.Prepared)
	expect("live start 2", "every start 2")
	metrics(`instance_partitions{generation="1"} 4` + "\n" + `instance_partitions{generation="2"} 8` + "\n")
	publish(gen2, generation.Writing)
	publish(gen2, generation.Imported)
	publish(gen1, generation.Retired)
	expect("live stop 1")
	metrics(`instance_partitions{generation="2"} 8` + "\n")
	if got := live.Running(); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("live instances running: %v", got)
	}
	stopLive()
	expect("live stop 2")
	select {
	case e := <-events:
		t.Fatalf("unexpected %q", e)
	default:
	}

	boom := errors.New("boom")
	failing := &control.Instances{Follower: f, Want: control.Existing, New: func(gen *imv1.Generation, _ prometheus.Registerer) (control.Component, error) {
		return &component{run: func(ctx context.Context) error {
			if gen.Id == 2 {
				return boom
			}
			<-ctx.Done()
			return nil
		}}, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := failing.Run(ctx); !errors.Is(err, boom) {
		t.Fatalf("a failing instance: Run = %v", err)
	}
}

// component is a Component running run, always ready.
type component struct{ run func(context.Context) error }

func (c *component) Run(ctx context.Context) error { return c.run(ctx) }
func (c *component) Ready(context.Context) error   { return nil }
