package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/tools/netns"
)

// Namespaces of the partitioned services: sc-<bridge>-<service> (a crashed
// run's are replaced by the next run's, by name).
const (
	sequencerInstance = "chaos-sequencer-2" // the cut-off sequencer's static member id
	sequencerGroup    = "seqchat-sequencer" // cmd/sequencer's default group
)

// joinNamespaces makes the namespaces of sequencer-2 and gateway-b on the
// bridge and returns the history API's address on the bridge (where both
// namespaces reach it).
func (h *Harness) joinNamespaces(historyPort string) (string, error) {
	for i, name := range []string{"sequencer-2", "gateway-b"} {
		ns, err := netns.Join(h.cfg.Bridge, h.cfg.Bridge+"-"+name, i+1)
		if err != nil {
			h.removeNamespaces()
			return "", fmt.Errorf("chaos: %w", err)
		}
		h.namespaces[name] = ns
	}
	host, err := bridgeHost(h.cfg.KafkaBrokers)
	if err != nil {
		h.removeNamespaces()
		return "", err
	}
	return net.JoinHostPort(host, historyPort), nil
}

// bridgeHost is the brokers' host: on the bridge, the host's address there.
func bridgeHost(brokers string) (string, error) {
	host, _, err := net.SplitHostPort(strings.Split(brokers, ",")[0])
	if err != nil {
		return "", fmt.Errorf("chaos: broker address %q: %w", brokers, err)
	}
	return host, nil
}

func (h *Harness) removeNamespaces() {
	for name, ns := range h.namespaces {
		if err := ns.Restore(); err != nil { // a run cancelled mid-partition
			h.logf("%v", err)
		}
		if err := ns.Remove(); err != nil {
			h.logf("%v", err)
		}
		delete(h.namespaces, name)
	}
}

// inNamespace moves the service into ns: it runs through ip netns exec
// (which replaces itself with the service: the pid is the service's), its
// admin and listen addresses on the namespace's address.
func (s *Service) inNamespace(ns *netns.Namespace) {
	for i, a := range s.Args {
		if i > 0 && (s.Args[i-1] == "-admin-addr" || s.Args[i-1] == "-listen-addr") {
			_, port, _ := net.SplitHostPort(a)
			s.Args[i] = net.JoinHostPort(ns.Addr.String(), port)
		}
	}
	_, port, _ := net.SplitHostPort(s.AdminAddr)
	s.AdminAddr = net.JoinHostPort(ns.Addr.String(), port)
	s.Bin, s.Args = ns.Command(s.Bin, s.Args...)
}

// partitionSequencer cuts sequencer-2 off for PartitionLength under the
// load. While it is away its partitions must move to the other sequencer
// (its session expires) and every message be delivered (the link stays
// down until they were, if that takes longer); when its link is
// back it must rejoin. Whatever it held then is refused (fenced) or
// dropped, never committed: the sequenced log check at the end of the
// run would find it.
func (h *Harness) partitionSequencer(ctx context.Context) error {
	s, ns := h.services["sequencer-2"], h.namespaces["sequencer-2"]
	fencedBefore := s.Metric("seqchat_sequencer_fenced_total")
	logBefore := fileSize(s.LogPath)
	raw := kafkawire.Topics{}.WithDefaults().Raw
	what := func(moved, caughtUp time.Duration) string {
		return fmt.Sprintf("sequencer-2 cut off: its partitions moved after %v, all messages delivered %v after the cut",
			moved.Round(time.Millisecond), caughtUp.Round(time.Millisecond))
	}
	var during string
	cut, restored, err := h.partition(ctx, ns, func(cut time.Time) error {
		if err := h.until(ctx, cut.Add(h.cfg.PartitionLength), "sequencer-2's partitions moved", func() bool {
			m, stable := h.groupMembers(sequencerGroup, raw)
			_, present := m[sequencerInstance]
			return stable && !present && len(m) > 0
		}); err != nil {
			return err
		}
		moved := time.Since(cut)
		r, err := h.recover(ctx, cut, time.Now(), nil)
		during = what(moved, r.took)
		return err
	})
	if err != nil {
		return fmt.Errorf("sequencer partition: %w", err)
	}
	cutFor := restored.Sub(cut)
	// Its /readyz answered all along (its requests wait on a dead link
	// until they time out): back means a member again, owning partitions.
	if err := h.until(ctx, time.Now().Add(h.cfg.RecoveryTimeout), "sequencer-2 rejoined", func() bool {
		m, stable := h.groupMembers(sequencerGroup, raw)
		return stable && m[sequencerInstance] > 0
	}); err != nil {
		return fmt.Errorf("sequencer partition: %w", err)
	}
	rejoined := time.Since(restored)
	r, err := h.recover(ctx, restored, time.Now(), nil)
	if err != nil {
		return fmt.Errorf("sequencer partition: %w", err)
	}
	fenced := s.Metric("seqchat_sequencer_fenced_total") - fencedBefore
	h.logf("sequencer partition: %s; link restored after %v: rejoined with partitions after %v, all messages delivered after %v; held %d messages; fenced %v times since the cut; its log since the cut: %s",
		during, cutFor.Round(time.Millisecond), rejoined.Round(time.Millisecond), r.took.Round(time.Millisecond), r.held, fenced, grepFrom(s.LogPath, logBefore, `fenced|transaction failed|session`))
	return nil
}

// partitionGateway cuts gateway-b off for PartitionLength under the load:
// its devices' connections go silent, they notice by their keepalive and
// reconnect to gateway-a, writing their unanswered sends again; the link
// stays down until every message was delivered without it (at least
// PartitionLength). When its link is back it must be ready again.
func (h *Harness) partitionGateway(ctx context.Context) error {
	s, ns := h.services["gateway-b"], h.namespaces["gateway-b"]
	reconnects := h.gen.Progress().Reconnects
	var during string
	cut, restored, err := h.partition(ctx, ns, func(cut time.Time) error {
		if err := h.until(ctx, cut.Add(h.cfg.PartitionLength), "gateway-b's devices reconnected elsewhere", func() bool {
			return h.gen.Progress().Reconnects > reconnects
		}); err != nil {
			return err
		}
		moved := time.Since(cut)
		r, err := h.recover(ctx, cut, time.Now(), nil)
		during = fmt.Sprintf("gateway-b cut off: its devices reconnecting elsewhere after %v, all messages delivered %v after the cut",
			moved.Round(time.Millisecond), r.took.Round(time.Millisecond))
		return err
	})
	if err != nil {
		return fmt.Errorf("gateway partition: %w", err)
	}
	cutFor := restored.Sub(cut)
	if err := h.waitReady(ctx, s); err != nil {
		return fmt.Errorf("gateway partition: %w", err)
	}
	ready := time.Since(restored)
	r, err := h.recover(ctx, restored, time.Now(), nil)
	if err != nil {
		return fmt.Errorf("gateway partition: %w", err)
	}
	h.logf("gateway partition: %s; link restored after %v: ready after %v, all messages delivered after %v; held %d messages; %d reconnects",
		during, cutFor.Round(time.Millisecond), ready.Round(time.Millisecond), r.took.Round(time.Millisecond), r.held, h.gen.Progress().Reconnects-reconnects)
	return nil
}

// partition takes ns's link down, runs during, keeps the link down until
// PartitionLength has passed (longer if during took longer: it waits for
// the pipeline to recover without the service) and brings it up again
// (also when during failed or ctx ended); it returns when the link went
// down and when it came back.
func (h *Harness) partition(ctx context.Context, ns *netns.Namespace, during func(cut time.Time) error) (cut, restored time.Time, err error) {
	if err := ns.Cut(); err != nil {
		return time.Time{}, time.Time{}, err
	}
	cut = time.Now()
	err = during(cut)
	if err == nil {
		err = sleep(ctx, time.Until(cut.Add(h.cfg.PartitionLength)))
	}
	if rerr := ns.Restore(); rerr != nil && err == nil {
		err = rerr
	}
	return cut, time.Now(), err
}

// until polls cond until it holds, deadline passes (an error naming what)
// or ctx ends.
func (h *Harness) until(ctx context.Context, deadline time.Time, what string, cond func() bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %v", what, time.Until(deadline).Round(time.Second)*-1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// groupMembers is how many partitions of topic each member of group owns,
// by static instance id (member id for dynamic members), and whether the
// group is stable; nothing if it could not be described.
func (h *Harness) groupMembers(group, topic string) (map[string]int, bool) {
	admin, err := kafkawire.Config{Brokers: strings.Split(h.cfg.KafkaBrokers, ",")}.NewAdmin()
	if err != nil {
		return nil, false
	}
	defer admin.Close()
	out, state, err := kafkawire.GroupAssignment(admin, group, topic)
	if err != nil {
		return nil, false
	}
	return out, state == "Stable"
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// grepFrom is the lines of the file from offset on that match pattern,
// joined by " | " (at most 10), or "none".
func grepFrom(path string, offset int64, pattern string) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return "unreadable"
	}
	lines := regexp.MustCompile(`(?m)^.*(`+pattern+`).*$`).FindAllString(string(b[offset:]), 10)
	if len(lines) == 0 {
		return "none"
	}
	return strings.Join(lines, " | ")
}
