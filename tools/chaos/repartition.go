package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// repartition moves the running pipeline to m partitions (imctl
// repartition; the services follow the control topic) with faults in the
// middle of the switch: imctl is SIGKILLed once writes go to the new
// generation and run again, and while the second run fences and imports,
// the services of cfg.RepartitionVictims are SIGKILLed in turn (each
// waited out as any kill). It reports how long each step took and, per
// conversation that sent between the switch of writes and the import, the
// longest any of its sends waited for a seq. Then imctl repartition
// cleanup deletes the old generation while the load goes on.
func (h *Harness) repartition(ctx context.Context, m int) error {
	before, _ := h.control.Current()
	next := before.GetGenerations()[len(before.GetGenerations())-1].GetId() + 1
	began := time.Now()
	h.logf("repartition to %d partitions (generation %d): imctl started", m, next)
	first, firstDone, err := h.startImctl("repartition", "-partitions", strconv.Itoa(m))
	if err != nil {
		return err
	}
	switched, err := h.awaitControl(ctx, firstDone, func(g *imv1.Generations) bool { return generation.WriteTo(g).GetId() == next })
	if err != nil {
		return fmt.Errorf("repartition to %d: writes never switched: %w", m, err)
	}
	if err := first.Process.Kill(); err != nil {
		return fmt.Errorf("repartition to %d: kill imctl: %w", m, err)
	}
	<-firstDone
	h.logf("repartition to %d: writes switched after %v; imctl SIGKILLed, running it again", m, switched.Sub(began).Round(time.Millisecond))
	second, secondDone, err := h.startImctl("repartition", "-partitions", strconv.Itoa(m))
	if err != nil {
		return err
	}
	imported := make(chan time.Time, 1)
	go func() {
		at, err := h.awaitControl(ctx, nil, func(g *imv1.Generations) bool { return phaseOf(g, next) >= generation.Imported })
		if err == nil {
			imported <- at
		}
	}()
	for _, name := range h.cfg.RepartitionVictims {
		if err := h.kill(ctx, "repartition kill", h.services[name]); err != nil {
			second.Process.Kill()
			return err
		}
	}
	if err := <-secondDone; err != nil {
		return fmt.Errorf("repartition to %d: imctl run again: %w (its output: %s)", m, err, h.imctlLog())
	}
	done := time.Now()
	var importedAt time.Time
	select {
	case importedAt = <-imported:
	case <-ctx.Done():
		return ctx.Err()
	}
	// From the switch of writes: sends written to the new generation wait
	// there for its import.
	toSeq, toDelivered := h.gen.LongestWaits(switched, importedAt)
	seq, delivered := loadgen.Summarize(toSeq), loadgen.Summarize(toDelivered)
	h.logf("repartition to %d: every new partition imported after %v, the old generation retired and imctl done after %v (-quiet %v); "+
		"%d conversations sent from the switch of writes to the import, the longest wait of each: for its seq p50 %.0f ms, p99 %.0f ms, max %.0f ms; "+
		"for its last delivery p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		m, importedAt.Sub(began).Round(time.Millisecond), done.Sub(began).Round(time.Millisecond), h.cfg.RepartitionQuiet,
		seq.Count, seq.P50ms, seq.P99ms, seq.MaxMs, delivered.P50ms, delivered.P99ms, delivered.MaxMs)

	// The old generation's topics go while the load goes on: its log is
	// checked first.
	if err := h.log.fencedUpTo(ctx, next-1); err != nil {
		return err
	}
	_, cleanupDone, err := h.startImctl("repartition", "cleanup")
	if err != nil {
		return err
	}
	if err := <-cleanupDone; err != nil {
		return fmt.Errorf("repartition to %d: imctl repartition cleanup: %w (its output: %s)", m, err, h.imctlLog())
	}
	h.logf("repartition to %d: the old generation deleted after %v more", m, time.Since(done).Round(time.Millisecond))
	return nil
}

// startImctl starts imctl with args and the run's -quiet and brokers, its
// output appended to imctl.log in the log directory; done gives its exit.
func (h *Harness) startImctl(args ...string) (cmd *exec.Cmd, done <-chan error, err error) {
	out, err := os.OpenFile(filepath.Join(h.cfg.LogDir, "imctl.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	args = append(args, "-quiet", h.cfg.RepartitionQuiet.String(), "-kafka-brokers", h.cfg.KafkaBrokers, "-log-format", "json")
	cmd = exec.Command(filepath.Join(h.cfg.BinDir, "imctl"), args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("start imctl %s: %w", strings.Join(args, " "), err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		out.Close()
	}()
	return cmd, exited, nil
}

func (h *Harness) imctlLog() string {
	b, err := os.ReadFile(filepath.Join(h.cfg.LogDir, "imctl.log"))
	if err != nil {
		return err.Error()
	}
	const tail = 2000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// awaitControl waits until the harness's view of the control topic
// satisfies ok and returns when it first saw that. exited, when not nil,
// is a process whose end before that is an error.
func (h *Harness) awaitControl(ctx context.Context, exited <-chan error, ok func(*imv1.Generations) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RecoveryTimeout)
	defer cancel()
	for {
		g, changed := h.control.Current()
		if ok(g) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case err := <-exited:
			return time.Time{}, fmt.Errorf("imctl exited first (%v): %s", err, h.imctlLog())
		case <-changed:
		}
	}
}

func phaseOf(g *imv1.Generations, id uint32) imv1.GenerationPhase {
	for _, gen := range g.GetGenerations() {
		if gen.Id == id {
			return gen.Phase
		}
	}
	return 0
}

// runLog follows the generations of the run's sequenced log: the one
// written to when the run began (from its offsets then), and every later
// one (from its start), checked in order.
type runLog struct {
	*SequencedLog
	first uint32
	from  map[int32]int64 // the first generation's offsets when the run began
	next  uint32          // the first generation not checked yet
}

func (l *runLog) generation(id uint32) LogGeneration {
	g := LogGeneration{Topic: generation.Topics(kafkawire.Topics{}.WithDefaults(), id).Sequenced}
	if id == l.first {
		g.From = l.from
	}
	return g
}

// fencedUpTo checks every generation not checked yet up to id, each fenced.
func (l *runLog) fencedUpTo(ctx context.Context, id uint32) error {
	for ; l.next <= id; l.next++ {
		if err := l.Fenced(ctx, l.generation(l.next)); err != nil {
			return err
		}
	}
	return nil
}

// finish checks what is left: up to the write generation, and it last.
func (l *runLog) finish(ctx context.Context, write uint32, want map[string]uint64) (LogCheck, error) {
	if err := l.fencedUpTo(ctx, write-1); err != nil {
		return l.result(), err
	}
	return l.Last(ctx, l.generation(write), want)
}
