package repartition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Config configures a Tool.
type Config struct {
	Kafka kafkawire.Config
	// Topics are generation 1's names; zero fields get kafkawire's defaults.
	Topics kafkawire.Topics
	// ControlTopic; zero means generation.ControlTopic.
	ControlTopic string
	// Layout of the new topics (replication factor, retention); its
	// Partitions is ignored.
	Layout kafkawire.Layout
	// SequencerGroup, FanoutGroup and HistoryGroup are generation 1's
	// groups; zero means "seqchat-sequencer", "seqchat-fanout" and
	// "seqchat-history".
	SequencerGroup, FanoutGroup, HistoryGroup string
	// Quiet: the old generation is drained once nothing was appended to
	// its raw topic for this long (and its sequencers forwarded all).
	// Zero means 1 minute: more than ingest's staleness bound and a
	// produce timeout.
	Quiet time.Duration
	// Poll is how often a wait looks again. Zero means 500ms.
	Poll time.Duration
	// Out receives the progress lines; nil means io.Discard.
	Out io.Writer
	// AfterStep, when set, is called after each step is taken (tests stop
	// the tool there, as a kill would).
	AfterStep func(generation.Step)
}

func (c *Config) setDefaults() {
	c.Topics = c.Topics.WithDefaults()
	if c.ControlTopic == "" {
		c.ControlTopic = generation.ControlTopic
	}
	if c.SequencerGroup == "" {
		c.SequencerGroup = "seqchat-sequencer"
	}
	if c.FanoutGroup == "" {
		c.FanoutGroup = "seqchat-fanout"
	}
	if c.HistoryGroup == "" {
		c.HistoryGroup = "seqchat-history"
	}
	if c.Quiet == 0 {
		c.Quiet = time.Minute
	}
	if c.Poll == 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// Tool performs and reports repartitions.
type Tool struct {
	cfg    Config
	client sarama.Client
	admin  sarama.ClusterAdmin

	lastReport  string
	lastPrinted time.Time
}

// New connects to the brokers.
func New(cfg Config) (*Tool, error) {
	cfg.setDefaults()
	if cfg.Quiet < 0 || cfg.Poll < 0 {
		return nil, errors.New("repartition: quiet and poll must not be negative")
	}
	client, err := sarama.NewClient(cfg.Kafka.BrokerList(), cfg.Kafka.ConsumerGroupConfig())
	if err != nil {
		return nil, fmt.Errorf("repartition: connect: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("repartition: admin: %w", err)
	}
	return &Tool{cfg: cfg, client: client, admin: admin}, nil
}

// Close releases the connections.
func (r *Tool) Close() error { return r.admin.Close() } // closes the client too

// Run repartitions to m partitions, taking the steps generation.Next
// decides until none is left: every step checks first what is done, so a
// run that was killed anywhere continues where it was.
func (r *Tool) Run(ctx context.Context, m int32) error {
	if err := kafkawire.EnsureTopics(r.admin, control.Spec(r.cfg.ControlTopic, r.cfg.Layout)); err != nil {
		return err
	}
	for {
		g, _, err := r.readControl(ctx)
		if err != nil {
			return err
		}
		c, done, err := generation.Begin(g, m)
		if err != nil {
			return err
		}
		if done {
			fmt.Fprintf(r.cfg.Out, "done: generation %d, %d partitions, is the only one\n", generation.WriteTo(g).GetId(), m)
			return nil
		}
		obs, prog, err := r.observe(ctx, g, c)
		if err != nil {
			return err
		}
		step, err := generation.Next(g, c, obs)
		if err != nil {
			return err
		}
		r.report(step, c, prog)
		if err := r.take(ctx, g, c, step); err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		if r.cfg.AfterStep != nil {
			r.cfg.AfterStep(step)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// take does one step.
func (r *Tool) take(ctx context.Context, g *imv1.Generations, c generation.Change, step generation.Step) error {
	now := time.Now().UnixMilli()
	set := func(gen *imv1.Generation, phase imv1.GenerationPhase) error {
		next, err := generation.WithPhase(g, gen, phase, now)
		if err != nil {
			return err
		}
		return r.publish(next)
	}
	switch step {
	case generation.CreateTopics:
		return kafkawire.EnsureTopics(r.admin, generation.Specs(r.cfg.Topics, r.cfg.Layout, c.To.Id, c.To.Partitions)...)
	case generation.PublishPrepared:
		return set(c.To, generation.Prepared)
	case generation.PublishWriting:
		return set(c.To, generation.Writing)
	case generation.WriteFences:
		offsets, err := WriteFences(r.cfg.Kafka, generation.Topics(r.cfg.Topics, c.From.Id).Raw, partitions(c.From.Partitions), c.To)
		if err != nil {
			return err
		}
		next, err := generation.WithFenceOffsets(g, c.To, offsets)
		if err != nil {
			return err
		}
		return r.publish(next)
	case generation.PublishImported:
		return set(c.To, generation.Imported)
	case generation.PublishRetired:
		return set(c.From, generation.Retired)
	case generation.AwaitInstances, generation.AwaitImports, generation.AwaitDrain:
		r.pause(ctx)
		return nil
	}
	return fmt.Errorf("no action for step %v", step)
}

func partitions(n int32) []int32 {
	out := make([]int32, n)
	for p := range out {
		out[p] = int32(p)
	}
	return out
}

// Status prints the generations and, for a repartition in progress, its
// next step and progress. It changes nothing.
func (r *Tool) Status(ctx context.Context) error {
	g, stored, err := r.readControl(ctx)
	if err != nil {
		return err
	}
	out := r.cfg.Out
	if !stored {
		fmt.Fprintf(out, "no control record in %s: never repartitioned\n", r.cfg.ControlTopic)
	}
	writeTo := generation.WriteTo(g)
	for _, gen := range g.Generations {
		t := generation.Topics(r.cfg.Topics, gen.Id)
		line := fmt.Sprintf("generation %d: %d partitions, %s, topics %s %s %s", gen.Id, gen.Partitions, phaseName(gen.Phase), t.Raw, t.Sequenced, t.SequencerState)
		if gen.ChangedAtMs > 0 {
			line += ", since " + time.UnixMilli(gen.ChangedAtMs).UTC().Format(time.RFC3339)
		}
		switch {
		case gen == writeTo:
			line += " (ingest writes here)"
		case gen.Phase == generation.Retired:
			line += " (imctl repartition cleanup deletes its topics)"
		}
		fmt.Fprintln(out, line)
	}
	c, ok := generation.InProgress(g)
	if !ok {
		fmt.Fprintln(out, "no repartition in progress")
		return nil
	}
	o, prog, err := r.observe(ctx, g, c)
	if err != nil {
		return err
	}
	step, err := generation.Next(g, c, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "in progress, next step (imctl repartition -partitions %d): ", c.To.Partitions)
	r.report(step, c, prog)
	return nil
}

func phaseName(p imv1.GenerationPhase) string {
	if p == generation.Imported {
		return "sequencing"
	}
	return strings.ToLower(strings.TrimPrefix(p.String(), "GENERATION_PHASE_"))
}
