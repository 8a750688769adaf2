package main

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/seqchat/seqchat/tools/loadgen"
)

// cpuColumns are the processes of the CPU table, in this order; any other
// process measured is added after them.
var cpuColumns = []string{"broker", "clickhouse", "sequencer", "fanout", "history", "gateway", "ingest", "centrifugo", "loadgen", "floor"}

func render(c config, seq *seqRow, seqCmd string, runs []loadRun, started time.Time) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## Side by side: Kafka's floor, the pipeline, Centrifugo (`make bench`)\n\n")
	p("Run %s, %s.\n\n", started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(started).Round(time.Second))
	p("Machine: %s, %d cores, %s RAM; %s; Kafka %s (single broker, KRaft), ClickHouse %s, Centrifugo %s (single node, memory engine, history and recovery on). "+
		"The broker, ClickHouse, every service, the peer and the load generator share the machine.\n\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), c.kafkaVersion, clickhouseVersion(), c.cfVers)
	if seq != nil {
		p("### Raw broker and sequencer (%d records of %d-byte bodies, %d partitions)\n\n", seq.Records, seq.BodyBytes, seq.Partitions)
		p("| raw produce rec/s | raw consume rec/s | sequenced rec/s | sequenced / raw produce |\n|---:|---:|---:|---:|\n")
		p("| %.0f | %.0f | %.0f | %.2f |\n\n", seq.RawProduce, seq.RawConsume, seq.Sequenced, seq.Sequenced/seq.RawProduce)
		p("Raw produce: kafka-go, acks=all, the ingest path's writer. Raw consume: a read_committed consumer, first record to last. " +
			"Sequenced: committed entries out of the sequencer's transactions, first to last.\n\n")
	}
	renderDelivery(p, c, runs)
	renderHops(p, runs)
	renderCPU(p, runs)
	renderOverload(p, runs)
	renderRatios(p, c, seq, runs)
	p("### Commands\n\n```\nmake bench    # = make services-down up centrifugo-up, then bin/bench\n")
	if seqCmd != "" {
		p("%s\n", seqCmd)
	}
	for _, r := range runs {
		p("%s\n", r.command)
	}
	p("```\n\nRaw results (JSON, latency histograms as PNG) are in `%s`.\n", c.dir)
	return b.String()
}

func renderDelivery(p func(string, ...any), c config, runs []loadRun) {
	p("### Delivery under load (200 users, 20 groups of 10, 20 dm pairs; open loop; %v per run)\n\n", c.duration)
	p("Latency is from each send's intended time to its arrival at each member device (the sender's own included). " +
		"The floor is Kafka alone over the pipeline's hops with no logic (`bin/floor`, tools/floor): a producer to a raw topic, " +
		"an exactly-once relay writing one sequenced and one state record per input with the offsets in one transaction, " +
		"a relay to a gateway topic, a read_committed consumer; built with the same libraries and settings as the services. " +
		"\"× floor\" is the pipeline's p50 and p99 over the floor's at the same rate.\n\n")
	p("| target | sends/s asked | accepted/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | × floor p50 / p99 | late sends | not done at the end | anomalies | kept up |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|\n")
	for _, r := range runs {
		l := r.res.Latency
		// Unanswered sends and missing deliveries when the drain ran out
		// are a backlog, not broken guarantees: reported apart.
		notDone := r.res.Anomalies[loadgen.AnomalyUnanswered] + r.res.Anomalies[loadgen.AnomalyLost]
		var broken []string
		for k, n := range r.res.Anomalies {
			if k != loadgen.AnomalyUnanswered && k != loadgen.AnomalyLost {
				broken = append(broken, fmt.Sprintf("%s %d", k, n))
			}
		}
		slices.Sort(broken)
		anomalies := "none"
		if len(broken) > 0 {
			anomalies = strings.Join(broken, ", ")
		}
		kept := "yes"
		if !sustained(r) {
			kept = "no"
		}
		if r.overload {
			kept = "overload (below)"
		}
		ratio := "—"
		if f := find(runs, targetFloor, r.rate); r.target == targetSeqchat && f != nil && f.res.Latency.P50ms > 0 && f.res.Latency.P99ms > 0 {
			ratio = fmt.Sprintf("%.1f× / %.1f×", l.P50ms/f.res.Latency.P50ms, l.P99ms/f.res.Latency.P99ms)
		}
		p("| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %d | %d | %s | %s |\n", r.target, r.rate,
			r.res.Throughput.AcceptedPerSec, r.res.Throughput.DeliveriesPerSec, l.P50ms, l.P90ms, l.P99ms, l.P999ms, l.MaxMs,
			ratio, r.res.Counts.LateSends, notDone, anomalies, kept)
	}
	p("\n\"Kept up\": at least 95%% of the asked rate accepted, p99 under %v, every send accepted, no anomaly. "+
		"\"Not done at the end\": sends unanswered and deliveries missing when the %v drain ran out (a backlog). "+
		"\"Late sends\": sends the generator fired over 10 ms late because the machine was busy; their latency counts from the intended time.\n\n",
		sustainedP99, c.drain)
}

// renderHops is the latency by leg: the generator's split at the
// sequencer, then each service's own histogram.
func renderHops(p func(string, ...any), runs []loadRun) {
	var rows []loadRun
	for _, r := range runs {
		if r.target == targetSeqchat {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	p("### Latency by hop (p50 / p99 ms)\n\n")
	p("The first two columns split each delivery's latency at the sequencer, by the message's `sequenced_at_ms` (the load generator). " +
		"The others are the services' own histograms, read from their /metrics before and after the run: " +
		"**ingest ack** (the gateway's produce of a send to the raw topic until the broker acknowledged it), " +
		"**raw → committed** (a raw record's broker timestamp until the transaction holding its sequenced entry committed), " +
		"**sequenced → routed** (an entry's `sequenced_at_ms` until its gateway records were acknowledged; it includes the commit), " +
		"**routed → written** (a gateway record's broker timestamp until its frame was written to each recipient's socket).\n\n")
	p("| sends/s | send → sequenced | sequenced → delivered |")
	for _, h := range hops {
		p(" %s |", h.name)
	}
	p("\n|---:|---|---|%s\n", strings.Repeat("---|", len(hops)))
	for _, r := range rows {
		p("| %.0f |", r.rate)
		if l := r.res.Legs; l != nil {
			p(" %.1f / %.1f | %.1f / %.1f |", l.SendToSequenced.P50ms, l.SendToSequenced.P99ms, l.SequencedToDelivered.P50ms, l.SequencedToDelivered.P99ms)
		} else {
			p(" — | — |")
		}
		for _, h := range hops {
			i := slices.IndexFunc(r.hops, func(l hopLeg) bool { return l.name == h.name })
			if i < 0 || r.hops[i].count == 0 {
				p(" — |")
				continue
			}
			l := r.hops[i]
			p(" %.1f / %.1f |", ms(l.p50), ms(l.p99))
		}
		p("\n")
	}
	p("\n")
}

// renderCPU is what each process spent per 1,000 deliveries over the load
// window (load start to the last send or arrival, whichever is later).
func renderCPU(p func(string, ...any), runs []loadRun) {
	cols := slices.Clone(cpuColumns)
	var extra []string
	for _, r := range runs {
		for name := range r.cpu {
			if !slices.Contains(cols, name) && !slices.Contains(extra, name) {
				extra = append(extra, name)
			}
		}
	}
	sort.Strings(extra)
	cols = append(cols, extra...)
	used := cols[:0]
	for _, name := range cols {
		for _, r := range runs {
			if r.cpu[name] > 0 {
				used = append(used, name)
				break
			}
		}
	}
	if len(used) == 0 {
		return
	}
	p("### CPU seconds per 1,000 deliveries\n\n")
	p("User + system CPU time of each process from /proc/<pid>/stat over the load window (load start to the later of the last send and the last arrival), " +
		"divided by the deliveries in thousands; \"cores\" is the total over the window's length.\n\n")
	p("| target | sends/s |")
	for _, name := range used {
		p(" %s |", name)
	}
	p(" total | cores |\n|---|---:|%s---:|---:|\n", strings.Repeat("---:|", len(used)))
	for _, r := range runs {
		if r.cpu == nil || r.res.Counts.Deliveries == 0 {
			continue
		}
		k := float64(r.res.Counts.Deliveries) / 1000
		p("| %s | %.0f |", r.target, r.rate)
		total := 0.0
		for _, name := range used {
			v, ok := r.cpu[name]
			if !ok {
				p(" — |")
				continue
			}
			total += v
			p(" %.3f |", v/k)
		}
		cores := 0.0
		if w := r.res.Window.End().Sub(r.res.Window.LoadStart).Seconds(); w > 0 {
			cores = total / w
		}
		p(" %.3f | %.2f |\n", total/k, cores)
	}
	p("\n")
}

// renderOverload says what the pipeline did past its capacity.
func renderOverload(p func(string, ...any), runs []loadRun) {
	for _, r := range runs {
		if !r.overload {
			continue
		}
		c := r.res.Counts
		p("### Overload: %.0f sends/s, twice the highest rate kept up with\n\n", r.rate)
		codes := make([]string, 0, len(r.res.Rejections))
		for code, n := range r.res.Rejections {
			codes = append(codes, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(codes)
		refusals := "none"
		if len(codes) > 0 {
			refusals = strings.Join(codes, ", ")
		}
		p("- sends %d, accepted %d (%.0f/s), refusals answered %s;\n", c.Sends, c.Accepted, r.res.Throughput.AcceptedPerSec, refusals)
		p("- latency from the intended send time: p50 %.1f ms, p99 %.1f ms (it includes the waits of refused sends before their retry);\n",
			r.res.Latency.P50ms, r.res.Latency.P99ms)
		if a := r.res.AcceptedLatency; a != nil {
			p("- latency of accepted sends from the attempt that was accepted: p50 %.1f ms, p99 %.1f ms, max %.1f ms;\n", a.P50ms, a.P99ms, a.MaxMs)
		}
		p("- still unanswered or undelivered when the drain ended: %d.\n\n",
			r.res.Anomalies[loadgen.AnomalyUnanswered]+r.res.Anomalies[loadgen.AnomalyLost])
	}
}

func renderRatios(p func(string, ...any), c config, seq *seqRow, runs []loadRun) {
	p("### Ratios\n\n")
	ours, peer, floor := best(runs, targetSeqchat), best(runs, targetCentrifugo), best(runs, targetFloor)
	switch {
	case ours == nil:
		p("- The pipeline kept up with none of the rates.\n")
	case seq != nil:
		p("- Pipeline / raw broker: the highest rate the pipeline kept up with, %.0f sends/s (%.0f deliveries/s), is %.3f of the raw produce rate "+
			"and its deliveries %.3f of the raw consume rate.\n", ours.res.Throughput.AcceptedPerSec, ours.res.Throughput.DeliveriesPerSec,
			ours.res.Throughput.AcceptedPerSec/seq.RawProduce, ours.res.Throughput.DeliveriesPerSec/seq.RawConsume)
	}
	if ours != nil && floor != nil {
		p("- Pipeline / floor, highest rate kept up with: %.0f / %.0f sends/s.\n", ours.rate, floor.rate)
	}
	if ours != nil && peer != nil {
		p("- Pipeline / Centrifugo, highest rate kept up with: %.0f / %.0f sends/s = %.2f.\n", ours.rate, peer.rate, ours.rate/peer.rate)
	}
	for _, rate := range c.rates {
		o, q := find(runs, targetSeqchat, rate), find(runs, targetCentrifugo, rate)
		if o == nil || q == nil || q.res.Latency.P50ms <= 0 || q.res.Latency.P99ms <= 0 {
			continue
		}
		p("- At %.0f sends/s, pipeline vs Centrifugo: p50 %.1f ms vs %.1f ms (%.1f×), p99 %.1f ms vs %.1f ms (%.1f×).\n", rate, o.res.Latency.P50ms,
			q.res.Latency.P50ms, o.res.Latency.P50ms/q.res.Latency.P50ms, o.res.Latency.P99ms, q.res.Latency.P99ms,
			o.res.Latency.P99ms/q.res.Latency.P99ms)
	}
	p("\nWhat they do differs: the pipeline writes every send durably to Kafka before it answers, sequences it in a " +
		"Kafka transaction, routes it through a second topic and stores it in ClickHouse; the floor does the same Kafka work with no logic, " +
		"no WebSocket and no ClickHouse; Centrifugo (memory engine) keeps history in its process memory, so a restart loses it.\n\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
