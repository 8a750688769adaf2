package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Component is what Instances runs per generation: a sequencer, fanout or
// history sink of one generation.
type Component interface {
	// Run runs until ctx ends (nil then).
	Run(ctx context.Context) error
	// Ready fails while the component cannot do its job yet.
	Ready(ctx context.Context) error
}

// Instances runs a component once per generation of the control record
// that Want selects, starting and stopping instances as the record
// changes: a service serves every generation without a restart.
type Instances struct {
	// Follower gives the control record. Required.
	Follower *Follower
	// Want selects the generations to run an instance for. Required.
	Want func(*imv1.Generation) bool
	// New builds the instance of gen. reg is the service's registerer with
	// the label generation=<id>; what is registered there is unregistered
	// when the instance stops, so a generation's instance can start again.
	// Required.
	New func(gen *imv1.Generation, reg prometheus.Registerer) (Component, error)
	// Registerer of the instances' metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	running map[uint32]*instance
}

type instance struct {
	c      Component
	cancel context.CancelFunc
	done   chan error // the instance's result, once
	reg    *unregistering
}

// Live selects the generations that are not retired (fanouts, history
// sinks: a retired generation is drained).
func Live(gen *imv1.Generation) bool { return gen.Phase < generation.Retired }

// Existing selects every generation whose topics exist, retired ones too
// (sequencers: a retired generation's fenced sequencers forward late
// writes until imctl repartition cleanup deletes its topics).
func Existing(gen *imv1.Generation) bool { return gen.Phase != generation.Deleted }

// Running lists the generations whose instances run.
func (in *Instances) Running() []uint32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []uint32
	for id := range in.running {
		out = append(out, id)
	}
	return out
}

// Ready fails until the control topic was read to its end and while an
// instance is not ready.
func (in *Instances) Ready(ctx context.Context) error {
	if g, _ := in.Follower.Current(); g == nil {
		return errors.New("the control topic is not read yet")
	}
	in.mu.Lock()
	running := maps.Clone(in.running)
	in.mu.Unlock()
	for id, inst := range running {
		if err := inst.c.Ready(ctx); err != nil {
			return fmt.Errorf("generation %d: %w", id, err)
		}
	}
	return nil
}

// Run follows the record until ctx ends, then stops every instance. An
// instance that fails ends Run with its error (after stopping the others),
// as the component alone ends its service.
func (in *Instances) Run(ctx context.Context) error {
	log := in.Logger
	if log == nil {
		log = slog.Default()
	}
	in.mu.Lock()
	in.running = map[uint32]*instance{}
	in.mu.Unlock()
	failed := make(chan error, 1)
	defer in.stopAll()
	for {
		g, changed := in.Follower.Current()
		if g != nil {
			wanted := map[uint32]*imv1.Generation{}
			for _, gen := range g.GetGenerations() {
				if in.Want(gen) {
					wanted[gen.Id] = gen
				}
			}
			for id := range in.running {
				if wanted[id] == nil {
					log.Info("generation instance stopping", "generation", id)
					if err := in.stop(id); err != nil {
						return fmt.Errorf("generation %d: %w", id, err)
					}
				}
			}
			for id, gen := range wanted {
				if in.running[id] == nil {
					log.Info("generation instance starting", "generation", id, "partitions", gen.Partitions)
					if err := in.start(ctx, gen, failed); err != nil {
						return fmt.Errorf("generation %d: %w", id, err)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case err := <-failed:
			return err
		}
	}
}

func (in *Instances) start(ctx context.Context, gen *imv1.Generation, failed chan<- error) error {
	reg := &unregistering{}
	var labelled prometheus.Registerer
	if in.Registerer != nil {
		reg.parent = in.Registerer
		labelled = prometheus.WrapRegistererWith(prometheus.Labels{"generation": strconv.FormatUint(uint64(gen.Id), 10)}, reg)
	}
	c, err := in.New(gen, labelled)
	if err != nil {
		reg.unregisterAll()
		return err
	}
	ictx, cancel := context.WithCancel(ctx)
	inst := &instance{c: c, cancel: cancel, done: make(chan error, 1), reg: reg}
	in.mu.Lock()
	in.running[gen.Id] = inst
	in.mu.Unlock()
	go func() {
		err := c.Run(ictx)
		if err != nil && ictx.Err() == nil {
			select {
			case failed <- fmt.Errorf("generation %d: %w", gen.Id, err):
			default:
			}
		}
		inst.done <- err
	}()
	return nil
}

// stop stops generation id's instance and waits for it; its error, unless
// it stopped because it was asked to.
func (in *Instances) stop(id uint32) error {
	in.mu.Lock()
	inst := in.running[id]
	delete(in.running, id)
	in.mu.Unlock()
	inst.cancel()
	err := <-inst.done
	inst.reg.unregisterAll()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (in *Instances) stopAll() {
	in.mu.Lock()
	ids := make([]uint32, 0, len(in.running))
	for id, inst := range in.running {
		inst.cancel() // all at once, then wait for each
		ids = append(ids, id)
	}
	in.mu.Unlock()
	for _, id := range ids {
		in.stop(id) // errors of a shutdown are the instances' to log
	}
}

// unregistering registers with parent (if any) and remembers what, so
// that a stopped instance's metrics go with it.
type unregistering struct {
	parent prometheus.Registerer
	mu     sync.Mutex
	cs     []prometheus.Collector
}

func (u *unregistering) Register(c prometheus.Collector) error {
	if err := u.parent.Register(c); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cs = append(u.cs, c)
	return nil
}

func (u *unregistering) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := u.Register(c); err != nil {
			panic(err)
		}
	}
}

func (u *unregistering) Unregister(c prometheus.Collector) bool { return u.parent.Unregister(c) }

func (u *unregistering) unregisterAll() {
	if u.parent == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.cs {
		u.parent.Unregister(c)
	}
	u.cs = nil
}
