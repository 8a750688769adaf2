package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured and found.
type Result struct {
	Config     ResultConfig   `json:"config"`
	StartedAt  time.Time      `json:"started_at"`
	Counts     Counts         `json:"counts"`
	Latency    LatencySummary `json:"latency"`
	Throughput Throughput     `json:"throughput"`
	// Legs splits the latency at the sequencer (nil for a target that does
	// not say when it sequenced).
	Legs *Legs `json:"legs,omitempty"`
	// AcceptedLatency is the latency of every arrival from the last write
	// of its send, the attempt that was accepted: what a send that got in
	// waited, without the waits of refused attempts (nil for a target that
	// does not report writes).
	AcceptedLatency *LatencySummary `json:"accepted_latency,omitempty"`
	// ReconnectDowntime summarises, over every dropped connection, the
	// time until the device was connected again.
	ReconnectDowntime LatencySummary `json:"reconnect_downtime"`
	// Anomalies counts guarantee violations by kind (the Anomaly…
	// constants); empty in a clean run.
	Anomalies map[string]int `json:"anomalies"`
	// AnomalyExamples describes up to 50 of them.
	AnomalyExamples []string `json:"anomaly_examples,omitempty"`
	// Rejections counts rejected sends and error answers by code.
	Rejections map[string]int `json:"rejections,omitempty"`
	// Refusals counts the answers a send was written again after
	// (unavailable, rate_limited), by code; a send may be refused several
	// times before it is accepted.
	Refusals  map[string]int `json:"refusals,omitempty"`
	Histogram *Histogram     `json:"histogram"`
	// Window is when the load ran, so that what the machine spent can be
	// measured over the same span.
	Window Window `json:"window"`
}

// Window is the load phase: from its start to the last send's intended
// time, and to the last arrival of a load message.
type Window struct {
	LoadStart   time.Time `json:"load_start"`
	LastSend    time.Time `json:"last_send"`
	LastArrival time.Time `json:"last_arrival"`
}

// End is the later of the last send and the last arrival.
func (w Window) End() time.Time {
	if w.LastArrival.After(w.LastSend) {
		return w.LastArrival
	}
	return w.LastSend
}

// Legs are the latency's two parts: from a send's intended time until the
// sequencer gave it its seq (once per send), and from then until each
// delivery (fanout, gateway topic, gateway, WebSocket).
type Legs struct {
	SendToSequenced      LatencySummary `json:"send_to_sequenced"`
	SequencedToDelivered LatencySummary `json:"sequenced_to_delivered"`
}

// ResultConfig is the run's configuration as reported (no key).
type ResultConfig struct {
	Target    string   `json:"target"`
	Gateways  []string `json:"gateways"`
	Users     int      `json:"users"`
	GroupSize int      `json:"group_size"`
	Groups    int      `json:"groups"`
	DMs       int      `json:"dms"`
	Rate      float64  `json:"rate"`
	Duration  string   `json:"duration"`
	Drain     string   `json:"drain"`
	RunID     string   `json:"run_id"`
	Seed      uint64   `json:"seed"`
}

// Counts are the run's totals over the load phase (setup excluded).
type Counts struct {
	// Sends were fired; Accepted, Rejected and Errors are their answers.
	Sends    int `json:"sends"`
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Errors   int `json:"errors"`
	// Deliveries are first arrivals of the load's messages at member
	// devices, the sender's own device included.
	Deliveries int `json:"deliveries"`
	// ExpectedDeliveries is the sum over non-refused sends of the members.
	ExpectedDeliveries int `json:"expected_deliveries"`
	// LateSends were fired more than 10ms after their intended time (the
	// generator fell behind; their latency includes the delay).
	LateSends int `json:"late_sends"`
	// Disconnects are connections that dropped mid-run; Reconnects, the
	// new connections that replaced them.
	Disconnects int `json:"disconnects"`
	Reconnects  int `json:"reconnects"`
}

// Throughput is per second over the load phase (first to last send) for
// accepted sends, and from its start to the last delivery for deliveries.
type Throughput struct {
	AcceptedPerSec   float64 `json:"accepted_per_sec"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
}

// Failed reports whether any anomaly was found.
func (r *Result) Failed() bool { return len(r.Anomalies) > 0 }

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return nil
}

// WriteSummary writes the human summary table.
func (r *Result) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\t\n", k, v) }
	row("run", r.Config.RunID)
	if r.Config.Target != "" {
		row("target", r.Config.Target)
	}
	row("sends", fmt.Sprint(r.Counts.Sends))
	row("accepted", fmt.Sprint(r.Counts.Accepted))
	row("rejected", fmt.Sprint(r.Counts.Rejected))
	row("errors", fmt.Sprint(r.Counts.Errors))
	row("late sends", fmt.Sprint(r.Counts.LateSends))
	if len(r.Refusals) > 0 {
		parts := make([]string, 0, len(r.Refusals))
		for code, n := range r.Refusals {
			parts = append(parts, fmt.Sprintf("%s %d", code, n))
		}
		sort.Strings(parts)
		row("refusals", strings.Join(parts, ", "))
	}
	if r.Counts.Disconnects > 0 {
		row("disconnects", fmt.Sprint(r.Counts.Disconnects))
		row("reconnects", fmt.Sprintf("%d (downtime p50 %.0f ms, max %.0f ms)", r.Counts.Reconnects,
			r.ReconnectDowntime.P50ms, r.ReconnectDowntime.MaxMs))
	}
	row("deliveries", fmt.Sprintf("%d of %d", r.Counts.Deliveries, r.Counts.ExpectedDeliveries))
	row("accepted/s", fmt.Sprintf("%.1f", r.Throughput.AcceptedPerSec))
	row("deliveries/s", fmt.Sprintf("%.1f", r.Throughput.DeliveriesPerSec))
	for _, q := range []struct {
		name string
		ms   float64
	}{{"p50", r.Latency.P50ms}, {"p90", r.Latency.P90ms}, {"p99", r.Latency.P99ms}, {"p99.9", r.Latency.P999ms}, {"max", r.Latency.MaxMs}} {
		row("latency "+q.name, fmt.Sprintf("%.1f ms", q.ms))
	}
	if r.Legs != nil {
		row("send→sequenced", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", r.Legs.SendToSequenced.P50ms, r.Legs.SendToSequenced.P99ms))
		row("sequenced→delivered", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", r.Legs.SequencedToDelivered.P50ms, r.Legs.SequencedToDelivered.P99ms))
	}
	kinds := make([]string, 0, len(r.Anomalies))
	for k := range r.Anomalies {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		row("anomalies", "none")
	}
	for _, k := range kinds {
		row("anomaly "+k, fmt.Sprint(r.Anomalies[k]))
	}
	return tw.Flush()
}
