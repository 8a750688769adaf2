package repartition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Cleanup deletes the topics of the retired generations, oldest first. A
// retired generation must still be quiet (nothing appended to its raw
// topic for Quiet, everything its forwarders read forwarded: no ingest
// can still write there, docs/architecture.md "Retire"); then Cleanup
// publishes it deleted (its sequencers stop their instance), waits until
// its sequencer group has no member left, and deletes its topics, raw
// first. Killed anywhere, run it again: it goes on from there.
func (r *Tool) Cleanup(ctx context.Context) error {
	for {
		g, _, err := r.readControl(ctx)
		if err != nil {
			return err
		}
		var gen *imv1.Generation
		for _, x := range g.GetGenerations() {
			if x.Phase == generation.Retired {
				gen = x
				break
			}
			if x.Phase == generation.Deleted {
				left, err := r.topicsLeft(x)
				if err != nil {
					return err
				}
				if len(left) > 0 {
					gen = x
					break
				}
			}
		}
		if gen == nil {
			fmt.Fprintln(r.cfg.Out, "nothing to clean up: no retired generation has topics left")
			return nil
		}
		if err := r.cleanup(ctx, g, gen); err != nil {
			return fmt.Errorf("clean up generation %d: %w", gen.Id, err)
		}
	}
}

// cleanup deletes retired (or deleted, with topics left) generation gen.
func (r *Tool) cleanup(ctx context.Context, g *imv1.Generations, gen *imv1.Generation) error {
	name := fmt.Sprintf("generation %d (%d partitions)", gen.Id, gen.Partitions)
	topics := generation.Topics(r.cfg.Topics, gen.Id)
	group := generation.GroupID(r.cfg.SequencerGroup, gen.Id)
	if gen.Phase == generation.Retired {
		for {
			committed, err := r.committed(group, topics.Raw, gen.Partitions)
			if err != nil {
				return err
			}
			_, lag, last, err := r.rawDrain(ctx, gen, committed, true)
			if err != nil {
				return err
			}
			quietFor := time.Since(last)
			if lag == 0 && quietFor >= r.cfg.Quiet {
				break
			}
			r.say(fmt.Sprintf("%s: await quiet — raw lag %d, nothing appended to it for %v of %v (an ingest still writing there? see seqchat_control_write_generation)",
				name, lag, quietFor.Round(time.Second), r.cfg.Quiet))
			if !r.pause(ctx) {
				return ctx.Err()
			}
		}
		r.say(name + ": publish deleted")
		next, err := generation.WithPhase(g, gen, generation.Deleted, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if err := r.publish(next); err != nil {
			return err
		}
	}
	// Its sequencers stop their instance once they read the record; a
	// topic deleted under a running instance would fail its service.
	for {
		members, _, err := kafkawire.GroupAssignment(r.admin, group, topics.Raw)
		if err != nil {
			return fmt.Errorf("group %s: %w", group, err)
		}
		if len(members) == 0 {
			break
		}
		r.say(fmt.Sprintf("%s: await its sequencers stopping — %d members left in group %s", name, len(members), group))
		if !r.pause(ctx) {
			return ctx.Err()
		}
	}
	left, err := r.topicsLeft(gen)
	if err != nil {
		return err
	}
	for _, topic := range left { // raw first: a late produce then fails, unacknowledged
		r.say(fmt.Sprintf("%s: delete topic %s", name, topic))
		if err := r.admin.DeleteTopic(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s: %w", topic, err)
		}
	}
	return nil
}

// topicsLeft are gen's partitioned topics that still exist, raw first.
func (r *Tool) topicsLeft(gen *imv1.Generation) ([]string, error) {
	names, counts, err := r.generationTopics(gen)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, n := range names {
		if _, ok := counts[n]; ok {
			left = append(left, n)
		}
	}
	return left, nil
}

// say prints a progress line when it changed, or every 5 s while the same
// wait goes on.
func (r *Tool) say(line string) {
	if line == r.lastReport && time.Since(r.lastPrinted) < 5*time.Second {
		return
	}
	r.lastReport, r.lastPrinted = line, time.Now()
	fmt.Fprintf(r.cfg.Out, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), line)
}

// pause waits Poll; false if ctx ended.
func (r *Tool) pause(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(r.cfg.Poll):
		return true
	}
}
