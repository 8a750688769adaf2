package repartition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// Progress is what a run reports besides the step.
type Progress struct {
	Observed generation.Observed
	// SequencersClaimed, FanoutsClaimed: partitions of the new generation
	// its sequencer and fanout groups hold.
	SequencersClaimed, FanoutsClaimed int
	// OldLag: records of the old raw topic its sequencers have not
	// consumed (sequenced or forwarded) yet; OldEnd its end offsets' sum.
	OldLag, OldEnd int64
	// SinksBehind: old sequenced partitions the old history sinks have not
	// stored to their end yet (looked at once the rest is drained).
	SinksBehind int
	// QuietFor: how long the old raw topic has had nothing appended (by
	// its newest record's timestamp: clocks must roughly agree), of the
	// Quiet it must.
	QuietFor, Quiet time.Duration
}

// observe gathers what the broker shows of change c.
func (r *Tool) observe(ctx context.Context, g *imv1.Generations, c generation.Change) (generation.Observed, Progress, error) {
	var o generation.Observed
	var prog Progress
	to := c.To
	for _, gen := range g.GetGenerations() {
		if gen.Id == c.To.Id {
			to = gen // the record's, with its phase and fence offsets
		}
	}
	from := c.From
	exist, err := r.topicsExist(to)
	if err != nil || !exist {
		return o, prog, err
	}
	o.TopicsExist = true
	if to.Phase == 0 { // not published yet
		return o, prog, nil
	}
	toTopics, fromTopics := generation.Topics(r.cfg.Topics, to.Id), generation.Topics(r.cfg.Topics, from.Id)
	toGroup, fromGroup := generation.GroupID(r.cfg.SequencerGroup, to.Id), generation.GroupID(r.cfg.SequencerGroup, from.Id)
	assigned, state, err := kafkawire.GroupAssignment(r.admin, toGroup, toTopics.Raw)
	if err != nil {
		return o, prog, fmt.Errorf("group %s: %w", toGroup, err)
	}
	for _, n := range assigned {
		prog.SequencersClaimed += n
	}
	fanoutGroup := generation.GroupID(r.cfg.FanoutGroup, to.Id)
	fassigned, fstate, err := kafkawire.GroupAssignment(r.admin, fanoutGroup, toTopics.Sequenced)
	if err != nil {
		return o, prog, fmt.Errorf("group %s: %w", fanoutGroup, err)
	}
	for _, n := range fassigned {
		prog.FanoutsClaimed += n
	}
	o.InstancesReady = state == "Stable" && prog.SequencersClaimed == int(to.Partitions) &&
		fstate == "Stable" && prog.FanoutsClaimed == int(to.Partitions)
	o.FencesSent = len(to.FenceOffsets) == int(from.Partitions)
	fromOffsets, err := r.committed(fromGroup, fromTopics.Raw, from.Partitions)
	if err != nil {
		return o, prog, err
	}
	if o.FencesSent {
		for p, f := range to.FenceOffsets {
			if fromOffsets[p] > f {
				o.FencesCommitted++
			}
		}
	}
	toOffsets, err := r.committed(toGroup, toTopics.Raw, to.Partitions)
	if err != nil {
		return o, prog, err
	}
	for _, off := range toOffsets {
		if off >= 0 { // a later generation's first transaction is its import
			o.SequencerImport++
		}
	}
	if to.Phase >= generation.Writing {
		for q := range to.Partitions {
			ok, err := r.hasKey(ctx, toTopics.FanoutMembers, q, generation.ImportedKey)
			if err != nil {
				return o, prog, err
			}
			if ok {
				o.FanoutImport++
			}
		}
	}
	var last time.Time // the newest record of the old raw topic
	prog.OldEnd, prog.OldLag, last, err = r.rawDrain(ctx, from, fromOffsets, to.Phase >= generation.Imported)
	if err != nil {
		return o, prog, err
	}
	prog.QuietFor, prog.Quiet = time.Since(last), r.cfg.Quiet
	o.Drained = to.Phase >= generation.Imported && prog.OldLag == 0 && prog.QuietFor >= r.cfg.Quiet
	if o.Drained {
		// And the old history sinks stored everything: their group has
		// committed past each old sequenced partition's end record.
		group := generation.GroupID(r.cfg.HistoryGroup, from.Id)
		for p := range from.Partitions {
			_, passed, err := kafkawire.PassedRecord(ctx, r.cfg.Kafka, r.admin, group, fromTopics.Sequenced, p, generation.FenceKey)
			if err != nil {
				return o, prog, err
			}
			if !passed {
				o.Drained = false
				prog.SinksBehind++
			}
		}
	}
	prog.Observed = o
	return o, prog, nil
}

// hasKey reads topic/p (not transactional) to its end and says whether a
// record has key.
func (r *Tool) hasKey(ctx context.Context, topic string, p int32, key string) (bool, error) {
	end, err := kafkawire.NewestOffset(ctx, r.client, topic, p)
	if err != nil || end == 0 {
		return false, err
	}
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return false, err
	}
	defer consumer.Close()
	pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
	if err != nil {
		return false, fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case err := <-pc.Errors():
			return false, fmt.Errorf("read %s/%d: %w", topic, p, err)
		case m := <-pc.Messages():
			if string(m.Key) == key {
				return true, nil
			}
			if m.Offset+1 >= end {
				return false, nil
			}
		}
	}
}

// appendedAt is the timestamp of the record at offset of topic/p.
func (r *Tool) appendedAt(ctx context.Context, topic string, p int32, offset int64) (time.Time, error) {
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return time.Time{}, err
	}
	defer consumer.Close()
	pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, offset)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("read %s/%d at %d: %w", topic, p, offset, ctx.Err())
	case err := <-pc.Errors():
		return time.Time{}, fmt.Errorf("read %s/%d: %w", topic, p, err)
	case m := <-pc.Messages():
		return m.Timestamp, nil
	}
}

// topicsExist: the generation's partitioned topics exist with its count.
// One with another count is an error: it cannot be this generation's. One
// describe, no waiting (kafkawire.PartitionCount waits 10 s for a topic
// that does not exist yet, which is the usual answer here): a topic
// created a moment ago and not known yet is created again, harmlessly.
func (r *Tool) topicsExist(gen *imv1.Generation) (bool, error) {
	names, counts, err := r.generationTopics(gen)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		n, ok := counts[name]
		switch {
		case !ok || n < 0:
			return false, nil
		case n != gen.Partitions:
			return false, fmt.Errorf("topic %s exists with %d partitions, generation %d has %d: %w",
				name, n, gen.Id, gen.Partitions, kafkawire.ErrPartitionMismatch)
		}
	}
	return true, nil
}

// generationTopics describes gen's partitioned topics (generation.Specs'),
// named raw first: the partition count of each that exists, -1 for one
// without a leader yet.
func (r *Tool) generationTopics(gen *imv1.Generation) (names []string, counts map[string]int32, err error) {
	t := generation.Topics(r.cfg.Topics, gen.Id)
	names = []string{t.Raw, t.Sequenced, t.SequencerState, t.FanoutMembers}
	md, err := r.admin.DescribeTopics(names)
	if err != nil {
		return nil, nil, fmt.Errorf("describe topics: %w", err)
	}
	counts = map[string]int32{}
	for _, tm := range md {
		switch {
		case errors.Is(tm.Err, sarama.ErrUnknownTopicOrPartition):
		case errors.Is(tm.Err, sarama.ErrLeaderNotAvailable):
			counts[tm.Name] = -1
		case tm.Err != sarama.ErrNoError:
			return nil, nil, fmt.Errorf("describe topic %s: %w", tm.Name, tm.Err)
		default:
			counts[tm.Name] = int32(len(tm.Partitions))
		}
	}
	return names, counts, nil
}

// rawDrain measures gen's raw topic against its sequencers' committed
// offsets: its end and lag summed over the partitions, and, withLast, when
// its newest record was appended (zero when it has none). The time comes
// from the records' timestamps, not from this process's memory, so a
// rerun after a kill does not start a quiet period again.
func (r *Tool) rawDrain(ctx context.Context, gen *imv1.Generation, committed []int64, withLast bool) (end, lag int64, last time.Time, err error) {
	topic := generation.Topics(r.cfg.Topics, gen.Id).Raw
	for p := range gen.Partitions {
		e, err := kafkawire.NewestOffset(ctx, r.client, topic, p)
		if err != nil {
			return 0, 0, time.Time{}, err
		}
		end += e
		lag += max(e-max(committed[p], 0), 0)
		if withLast && e > 0 {
			at, err := r.appendedAt(ctx, topic, p, e-1)
			if err != nil {
				return 0, 0, time.Time{}, err
			}
			if at.After(last) {
				last = at
			}
		}
	}
	return end, lag, last, nil
}

// committed is the group's committed offset of each partition of topic,
// -1 where it has none.
func (r *Tool) committed(group, topic string, n int32) ([]int64, error) {
	var resp *sarama.OffsetFetchResponse
	var err error
	// A coordinator loading its offsets (a broker just started) or moving
	// answers with an error for a while.
	deadline := time.Now().Add(30 * time.Second)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		resp, err = r.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: partitions(n)})
		if err == nil && resp.Err != sarama.ErrNoError {
			err = resp.Err
		}
		transient := errors.Is(err, sarama.ErrOffsetsLoadInProgress) || errors.Is(err, sarama.ErrNotCoordinatorForConsumer) ||
			errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable)
		if !transient || time.Now().After(deadline) {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	out := make([]int64, n)
	for p := range n {
		out[p] = -1
		b := resp.GetBlock(topic, p)
		if b == nil {
			continue
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("offset of group %s on %s/%d: %w", group, topic, p, b.Err)
		}
		out[p] = b.Offset
	}
	return out, nil
}

// report prints the step and the progress when they changed, or every 5 s
// while the same wait goes on.
func (r *Tool) report(step generation.Step, c generation.Change, p Progress) {
	line := fmt.Sprintf("generation %d (%d partitions) -> %d (%d partitions): %s", c.From.Id, c.From.Partitions, c.To.Id, c.To.Partitions, step)
	detail := describe(step, c, p)
	if detail != "" {
		line += " — " + detail
	}
	r.say(line)
}

// describe says what a step waits for.
func describe(step generation.Step, c generation.Change, p Progress) string {
	o := p.Observed
	var parts []string
	switch step {
	case generation.AwaitInstances:
		parts = append(parts, fmt.Sprintf("waiting for the sequencers and fanouts of generation %d to claim every partition: %d/%d and %d/%d (services start them from the control topic; ones pinned with -generation need another set with -generation %d)",
			c.To.Id, p.SequencersClaimed, c.To.Partitions, p.FanoutsClaimed, c.To.Partitions, c.To.Id))
	case generation.AwaitImports, generation.WriteFences, generation.PublishImported:
		parts = append(parts, fmt.Sprintf("fences committed %d/%d", o.FencesCommitted, c.From.Partitions),
			fmt.Sprintf("partitions imported %d/%d by the sequencers and %d/%d by the fanouts", o.SequencerImport, c.To.Partitions, o.FanoutImport, c.To.Partitions),
			fmt.Sprintf("old raw lag %d", p.OldLag))
	case generation.AwaitDrain, generation.PublishRetired:
		parts = append(parts, fmt.Sprintf("old raw lag %d", p.OldLag),
			fmt.Sprintf("nothing appended to it for %v of %v", p.QuietFor.Round(time.Second), p.Quiet))
		if p.SinksBehind > 0 {
			parts = append(parts, fmt.Sprintf("old history sinks behind on %d partitions", p.SinksBehind))
		}
	}
	return strings.Join(parts, ", ")
}
