// Package chaos runs the pipeline's services as processes under a steady
// load, kills them with SIGKILL at random and restarts them, restarts the
// Kafka broker once (on a cluster: kills the busiest broker and the active
// controller, and pauses a broker),
// and then checks every message at every client and in ClickHouse. Its report ends with one line:
//
//	anomalies: lost=0 duplicated=0 reordered=0 gaps=0 (messages=N, kills=K)
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/tools/loadgen"
	"github.com/seqchat/seqchat/tools/netns"
)

// Config is one chaos run.
type Config struct {
	// BinDir holds the service binaries (sequencer, fanout, history,
	// gateway). Required.
	BinDir string
	// StackScript restarts the broker: "<script> down kafka", then
	// "<script> up kafka". Empty: no broker restart.
	StackScript string
	// KafkaNodes is the stack's broker count. With more than one (a
	// cluster, replication factor 3), the broker restart is replaced by
	// three broker faults under the load: a quarter of the way, the node
	// leading most raw and sequenced partitions is killed (SIGKILL) and
	// started again after BrokerDowntime; half-way, the active KRaft
	// controller likewise; three quarters of the way, the leading node is
	// paused (SIGSTOP) for BrokerPause, longer than a consumer session,
	// and resumed ("<script> signal kafka-N SIG", "<script> controller").
	KafkaNodes     int
	BrokerDowntime time.Duration
	BrokerPause    time.Duration
	// Bridge names the Linux bridge that holds the brokers' address
	// (scripts/stack.sh SEQCHAT_KAFKA_BRIDGE, SEQCHAT_KAFKA_HOST). Set, on
	// a cluster, it adds two network partitions under the load: a second
	// sequencer and gateway-b run each in a network namespace joined to the
	// bridge (tools/netns); three eighths of the way the sequencer's
	// link goes down for PartitionLength, seven eighths of the way the
	// gateway's. The history API then listens on the bridge's address.
	// Needs root and iproute2.
	Bridge          string
	PartitionLength time.Duration
	// Repartitions are partition counts the running pipeline is moved to
	// in turn (imctl repartition from BinDir; the services follow the
	// control topic), spread evenly over the kills; each SIGKILLs imctl
	// once writes switched and runs it again, and kills each service of
	// RepartitionVictims in turn while the switch goes on.
	// RepartitionQuiet is imctl's -quiet (zero: 20 s).
	Repartitions       []int
	RepartitionVictims []string
	RepartitionQuiet   time.Duration
	// KafkaBrokers, ClickHouseAddr, ClickHouseDatabase: the stack.
	KafkaBrokers       string
	ClickHouseAddr     string
	ClickHouseDatabase string
	// TokenKey signs device tokens; ServiceToken guards the history API.
	TokenKey     []byte
	ServiceToken string
	// Kills is how many services are killed (at least one of each victim
	// role once Kills >= len(Victims)).
	Kills int
	// Victims are the roles killed in turn, each round in a random order:
	// sequencer, fanout, history, gateway (alternating between the two
	// gateways). Empty means all four.
	Victims []string
	// MinMessages: the load runs until this many sends were fired and every
	// kill was made.
	MinMessages int
	// Rate is sends per second; Users, GroupSize, Groups, DMs as in
	// loadgen.Config.
	Rate                          float64
	Users, GroupSize, Groups, DMs int
	// Pause is the longest random wait between one kill's recovery and
	// the next kill (the shortest is a quarter of it).
	Pause time.Duration
	// Warmup is how long the load runs before the first fault, which
	// then waits until nothing older than settleWindow is outstanding:
	// faults are made under steady load, not on fresh topics and cold
	// JVMs (a fresh stack's first 25-95 s on the 2-core machine lagged by
	// seconds with no fault at all). Zero means 20 s; negative, none.
	Warmup time.Duration
	// RecoveryTimeout bounds one recovery (ready again, backlog drained).
	RecoveryTimeout time.Duration
	// LogDir receives each service's log. Required.
	LogDir string
	// Seed seeds the choice of victims and pauses (zero: the time).
	Seed uint64
	// Out receives the report, Logger the harness's own events.
	Out    io.Writer
	Logger *slog.Logger
}

// Report is a run's outcome.
type Report struct {
	Messages int // sends accepted
	Kills    int // service kills (broker faults not counted)
	Load     *loadgen.Result
	Store    StoreCheck
	// Log is what the sequenced topic holds of the run.
	Log LogCheck
	// Crashes are service exits the harness did not cause.
	Crashes int
}

// Anomalies folds the clients' and the store's findings into the four
// counts of the last line.
func (r *Report) Anomalies() (lost, duplicated, reordered, gaps int) {
	a := r.Load.Anomalies
	lost = a[loadgen.AnomalyLost] + a[loadgen.AnomalyUnanswered] + a[loadgen.AnomalyRejectedDelivered] + r.Store.Missing
	duplicated = a[loadgen.AnomalyDuplicate] + a[loadgen.AnomalySeqConflict] + r.Store.Conflicts + r.Store.Duplicated
	reordered = a[loadgen.AnomalyReorder] + a[loadgen.AnomalySenderOrder] + a[loadgen.AnomalyDivergent] + r.Store.Misplaced
	gaps = a[loadgen.AnomalyGap] + r.Store.Gaps
	return lost, duplicated, reordered, gaps
}

// Failed reports any anomaly, violation in the sequenced log, refused
// send or crash.
func (r *Report) Failed() bool {
	l, d, o, g := r.Anomalies()
	c := r.Load.Counts
	return l+d+o+g > 0 || len(r.Log.Violations) > 0 || r.Crashes > 0 || c.Rejected+c.Errors > 0 || c.Accepted != c.Sends
}

// LastLine is the report's verdict.
func (r *Report) LastLine() string {
	l, d, o, g := r.Anomalies()
	return fmt.Sprintf("anomalies: lost=%d duplicated=%d reordered=%d gaps=%d (messages=%d, kills=%d)", l, d, o, g, r.Messages, r.Kills)
}

// Harness is one chaos run.
type Harness struct {
	cfg      Config
	rng      *rand.Rand
	services map[string]*Service
	gen      *loadgen.Generator
	control  *control.Follower // the generations, as the services see them
	log      *runLog           // the run's sequenced log, checked as generations go
	// namespaces of the services that run in one, by service name.
	namespaces map[string]*netns.Namespace

	mu      sync.Mutex
	crashes int
	kills   int
}

// Roles are the victims a run may kill.
var Roles = []string{"sequencer", "fanout", "history", "gateway"}

// RepartitionRoles are the services a repartition may kill mid-switch.
var RepartitionRoles = []string{"sequencer", "fanout", "history", "gateway-a", "gateway-b"}

// New checks cfg and lays out the services on free loopback ports.
func New(cfg Config) (*Harness, error) {
	if cfg.BinDir == "" || cfg.LogDir == "" || cfg.Out == nil {
		return nil, errors.New("chaos: BinDir, LogDir and Out are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.RecoveryTimeout == 0 {
		cfg.RecoveryTimeout = 2 * time.Minute
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 20 * time.Second
	}
	if cfg.Pause == 0 {
		cfg.Pause = 4 * time.Second
	}
	// Longer than the controller takes to fence a node (KRaft's
	// broker.session.timeout.ms) and the clients to follow the new leaders:
	// the fault's own recovery is measured while the node is out.
	if cfg.BrokerDowntime == 0 {
		cfg.BrokerDowntime = 20 * time.Second
	}
	if cfg.BrokerPause == 0 {
		cfg.BrokerPause = 20 * time.Second
	}
	if cfg.PartitionLength == 0 {
		cfg.PartitionLength = 20 * time.Second
	}
	if cfg.RepartitionQuiet == 0 {
		cfg.RepartitionQuiet = 20 * time.Second
	}
	if len(cfg.Victims) == 0 {
		cfg.Victims = Roles
	}
	for _, v := range cfg.Victims {
		if !slices.Contains(Roles, v) {
			return nil, fmt.Errorf("chaos: unknown victim %q (want some of %v)", v, Roles)
		}
	}
	for _, v := range cfg.RepartitionVictims {
		if !slices.Contains(RepartitionRoles, v) {
			return nil, fmt.Errorf("chaos: unknown repartition victim %q (want some of %v)", v, RepartitionRoles)
		}
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: log dir: %w", err)
	}
	h := &Harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed>>1|1)), services: map[string]*Service{},
		namespaces: map[string]*netns.Namespace{},
		control: control.NewFollower(control.FollowerConfig{Kafka: kafkawire.Config{Brokers: strings.Split(cfg.KafkaBrokers, ",")},
			Logger: cfg.Logger})}
	ports, err := FreePorts(8)
	if err != nil {
		return nil, err
	}
	historyAPI := "127.0.0.1:" + ports[0]
	if cfg.Bridge != "" {
		if cfg.KafkaNodes < 2 {
			return nil, errors.New("chaos: network partitions (Bridge) need a cluster (KafkaNodes > 1)")
		}
		if historyAPI, err = h.joinNamespaces(ports[0]); err != nil {
			return nil, err
		}
	}
	common := []string{"-kafka-brokers", cfg.KafkaBrokers, "-clickhouse-addr", cfg.ClickHouseAddr,
		"-clickhouse-database", cfg.ClickHouseDatabase, "-log-format", "json"}
	add := func(name, bin, admin string, args ...string) {
		h.services[name] = &Service{Name: name, Bin: filepath.Join(cfg.BinDir, bin), AdminAddr: admin,
			Args:    append(append(slices.Clone(common), "-admin-addr", admin), args...),
			Env:     []string{"SEQCHAT_SERVICE_TOKEN=" + cfg.ServiceToken, "SEQCHAT_TOKEN_KEY=" + string(cfg.TokenKey)},
			LogPath: filepath.Join(cfg.LogDir, name+".log"), onCrash: h.crashed}
	}
	// Static group members, as in a production deployment (a StatefulSet's
	// pod names): a restarted consumer takes its partitions back at once.
	add("sequencer", "sequencer", "127.0.0.1:"+ports[1], "-instance-id", "chaos-sequencer")
	add("fanout", "fanout", "127.0.0.1:"+ports[2], "-instance-id", "chaos-fanout")
	add("history", "history", "127.0.0.1:"+ports[3], "-listen-addr", historyAPI, "-instance-id", "chaos-history")
	for i, id := range []string{"a", "b"} {
		// Debug: the gateway then logs each skip of seqs history does not
		// show the user, the one way it moves past a gap.
		add("gateway-"+id, "gateway", "127.0.0.1:"+ports[4+i], "-gateway-id", "chaos-"+id,
			"-listen-addr", "127.0.0.1:"+ports[6+i], "-history-url", "http://"+historyAPI, "-log-level", "debug")
	}
	if cfg.Bridge != "" {
		// The second sequencer exists to be cut off: its partitions move
		// to the first.
		add("sequencer-2", "sequencer", "127.0.0.1:"+ports[1], "-instance-id", "chaos-sequencer-2")
		for name, ns := range h.namespaces {
			h.services[name].inNamespace(ns)
		}
	}
	return h, nil
}

// FreePorts asks the kernel for n free loopback ports.
func FreePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("chaos: free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		out = append(out, port)
	}
	return out, nil
}

// crashed restarts a service that exited on its own, as a supervisor
// would, and counts it: the run then fails.
func (h *Harness) crashed(s *Service, err error) {
	h.mu.Lock()
	h.crashes++
	h.mu.Unlock()
	h.logf("CRASH %s exited on its own (%v); restarting it (log: %s)", s.Name, err, s.LogPath)
	if err := s.Start(); err != nil {
		h.logf("CRASH %s: restart failed: %v", s.Name, err)
	}
}

func (h *Harness) logf(format string, a ...any) {
	fmt.Fprintf(h.cfg.Out, "%s chaos: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

// Run starts the services, runs the load with the kills, stops
// everything and checks the outcome.
func (h *Harness) Run(ctx context.Context) (*Report, error) {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range h.services {
			if !yield(n) {
				return
			}
		}
	})
	// The namespaces go after the services stopped (defers run last-in
	// first-out): a service whose namespace is gone cannot reach the
	// brokers to shut down.
	defer h.removeNamespaces()
	defer h.stopAll()
	for _, n := range names {
		if err := h.services[n].Start(); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if err := h.waitReady(ctx, h.services[n]); err != nil {
			return nil, err
		}
	}
	h.logf("services ready: %s (logs in %s)", strings.Join(names, ", "), h.cfg.LogDir)
	controlCtx, stopControl := context.WithCancel(ctx)
	defer stopControl()
	go h.control.Run(controlCtx)
	gens, err := h.control.Wait(ctx)
	if err != nil {
		return nil, err
	}
	kcfg := kafkawire.Config{Brokers: strings.Split(h.cfg.KafkaBrokers, ",")}
	firstGen := generation.WriteTo(gens).GetId()
	seqTopic := generation.Topics(kafkawire.Topics{}.WithDefaults(), firstGen).Sequenced
	logStart, err := LogOffsets(ctx, kcfg, seqTopic) // the run's records come after
	if err != nil {
		return nil, err
	}

	gen, err := loadgen.New(loadgen.Config{
		Gateways: []string{"ws://" + h.listenAddr("gateway-a") + "/ws", "ws://" + h.listenAddr("gateway-b") + "/ws"},
		TokenKey: h.cfg.TokenKey,
		Users:    h.cfg.Users, GroupSize: h.cfg.GroupSize, Groups: h.cfg.Groups, DMs: h.cfg.DMs,
		Rate:     h.cfg.Rate,
		Duration: 24 * time.Hour, // ended by StopSending
		Drain:    h.cfg.RecoveryTimeout,
		Seed:     h.cfg.Seed,
		Logger:   h.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	h.gen = gen
	h.log = &runLog{SequencedLog: NewSequencedLog(kcfg, gen.Conversations()), first: firstGen, from: logStart, next: firstGen}
	type outcome struct {
		res *loadgen.Result
		err error
	}
	loadDone := make(chan outcome, 1)
	go func() {
		res, err := gen.Run(ctx, h.cfg.Out)
		loadDone <- outcome{res, err}
	}()
	select {
	case <-gen.LoadStarted():
	case o := <-loadDone:
		return nil, fmt.Errorf("load setup: %w", o.err)
	}
	h.logf("load started: run %s, %.0f sends/s", gen.RunID(), h.cfg.Rate)
	err = h.warmUp(ctx)
	if err == nil {
		err = h.killLoop(ctx)
	}
	if err != nil {
		gen.StopSending()
		<-loadDone
		return nil, err
	}
	for gen.Progress().Sends < h.cfg.MinMessages {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	gen.StopSending()
	h.logf("load stopped after %d sends; waiting for every delivery", gen.Progress().Sends)
	o := <-loadDone
	if o.err != nil {
		return nil, o.err
	}
	h.logf("clients done; checking ClickHouse")
	store, err := h.checkStore(ctx, gen)
	if err != nil {
		return nil, err
	}
	h.logf("checking the sequenced log")
	logCtx, cancel := context.WithTimeout(ctx, h.cfg.RecoveryTimeout)
	defer cancel()
	now, _ := h.control.Current()
	log, err := h.log.finish(logCtx, generation.WriteTo(now).GetId(), WantedSeqs(gen.Accepted()))
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	crashes, kills := h.crashes, h.kills
	h.mu.Unlock()
	return &Report{Messages: o.res.Counts.Accepted, Kills: kills, Load: o.res, Store: store, Log: log, Crashes: crashes}, nil
}

func (h *Harness) listenAddr(name string) string {
	args := h.services[name].Args
	i := slices.Index(args, "-listen-addr")
	return args[i+1]
}

func (h *Harness) waitReady(ctx context.Context, s *Service) error {
	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.RecoveryTimeout, errNotReady)
	defer cancel()
	return s.WaitReady(ctx)
}

// stopAll stops every service gracefully (SIGTERM).
func (h *Harness) stopAll() {
	for _, s := range h.services {
		s.mu.Lock()
		s.onCrash = nil
		s.mu.Unlock()
		if err := s.Stop(30 * time.Second); err != nil {
			h.logf("%v", err)
		}
	}
}

// killLoop makes the kills, the broker faults and the repartitions, each
// after a random pause and each waited out until the backlog it caused
// drained.
func (h *Harness) killLoop(ctx context.Context) error {
	var order []string
	gateway := 0
	for len(order) < h.cfg.Kills {
		round := slices.Clone(h.cfg.Victims)
		h.rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, v := range round {
			if v == "gateway" {
				v = []string{"gateway-a", "gateway-b"}[gateway%2]
				gateway++
			}
			order = append(order, v)
		}
	}
	order = order[:h.cfg.Kills]
	faults := map[int][]func(context.Context) error{}
	switch {
	case h.cfg.StackScript == "":
	case h.cfg.KafkaNodes > 1:
		faults[len(order)/4] = append(faults[len(order)/4], h.killBroker)
		faults[len(order)/2] = append(faults[len(order)/2], h.killController)
		faults[3*len(order)/4] = append(faults[3*len(order)/4], h.pauseBroker)
		if h.cfg.Bridge != "" {
			faults[3*len(order)/8] = append(faults[3*len(order)/8], h.partitionSequencer)
			faults[7*len(order)/8] = append(faults[7*len(order)/8], h.partitionGateway)
		}
	default:
		faults[len(order)/2] = append(faults[len(order)/2], h.restartBroker)
	}
	for j, m := range h.cfg.Repartitions {
		at := (j + 1) * len(order) / (len(h.cfg.Repartitions) + 1)
		faults[at] = append(faults[at], func(ctx context.Context) error { return h.repartition(ctx, m) })
	}
	for i := 0; i <= len(order); i++ {
		for _, fault := range faults[i] {
			if err := h.pause(ctx); err != nil {
				return err
			}
			if err := fault(ctx); err != nil {
				return err
			}
		}
		if i == len(order) {
			break
		}
		if err := h.pause(ctx); err != nil {
			return err
		}
		if err := h.kill(ctx, fmt.Sprintf("kill %d/%d", i+1, len(order)), h.services[order[i]]); err != nil {
			return err
		}
	}
	return nil
}

// warmUp waits out cfg.Warmup, then until the load is steady.
func (h *Harness) warmUp(ctx context.Context) error {
	if h.cfg.Warmup < 0 {
		return nil
	}
	start := time.Now()
	if err := sleep(ctx, h.cfg.Warmup); err != nil {
		return err
	}
	if err := h.until(ctx, time.Now().Add(h.cfg.RecoveryTimeout), "steady load (nothing older than 2 s outstanding)", func() bool {
		return h.gen.Outstanding(settleWindow) == 0
	}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	h.logf("load steady after %v: faults begin", time.Since(start).Round(time.Millisecond))
	return nil
}

func (h *Harness) pause(ctx context.Context) error {
	return sleep(ctx, h.cfg.Pause/4+time.Duration(h.rng.Int64N(int64(h.cfg.Pause*3/4)+1)))
}

// kill kills s with SIGKILL, restarts it at once and measures the time
// until it is ready and until the messages it held were all delivered.
func (h *Harness) kill(ctx context.Context, label string, s *Service) error {
	before := h.gen.Outstanding(time.Second)
	var devices []string // a gateway's: how soon they had everything again
	var watched map[string]samples
	if strings.HasPrefix(s.Name, "gateway-") {
		devices = h.gen.DevicesOn("ws://" + h.listenAddr(s.Name) + "/ws")
		watched = h.scrapeSurvivors(ctx, s.Name)
	}
	pid := s.Pid()
	killedAt := time.Now()
	s.Kill()
	h.mu.Lock()
	h.kills++
	h.mu.Unlock()
	if err := s.Start(); err != nil {
		return err
	}
	if err := h.waitReady(ctx, s); err != nil {
		return fmt.Errorf("%s (%s): %w", label, s.Name, err)
	}
	ready := time.Since(killedAt)
	r, err := h.recover(ctx, killedAt, time.Now(), devices)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", label, s.Name, err)
	}
	its := ""
	if devices != nil {
		its = fmt.Sprintf("its %d devices had everything after %v; ", len(devices), r.devicesTook.Round(time.Millisecond))
	}
	h.logf("%s: %s (pid %d) SIGKILL; restarted, ready after %v; %sall messages delivered after %v; held %d messages (%d outstanding before)",
		label, s.Name, pid, ready.Round(time.Millisecond), its, r.took.Round(time.Millisecond), r.held, before)
	if devices != nil {
		h.logStorm(ctx, devices, killedAt, watched)
	}
	return nil
}

// scrapeSurvivors reads the samples of the gateways other than killed,
// and of history: where a gateway kill's reconnect storm lands.
func (h *Harness) scrapeSurvivors(ctx context.Context, killed string) map[string]samples {
	out := map[string]samples{}
	for name, s := range h.services {
		if name == killed || !(strings.HasPrefix(name, "gateway-") || name == "history") {
			continue
		}
		c, err := scrapeSamples(ctx, s.AdminAddr)
		if err != nil {
			h.logf("%s: %v", name, err)
			continue
		}
		out[name] = c
	}
	return out
}

// logStorm says how a gateway kill's devices came back and what that cost
// the services that took them: reconnects, resumes, history reads.
func (h *Harness) logStorm(ctx context.Context, devices []string, killedAt time.Time, before map[string]samples) {
	back := h.gen.ConnectedSince(devices, killedAt)
	line := fmt.Sprintf("%d of %d devices connected again", len(back), len(devices))
	if len(back) > 0 {
		line += fmt.Sprintf(" (after p50 %v, max %v)", back[len(back)/2].Round(time.Millisecond), back[len(back)-1].Round(time.Millisecond))
	}
	after := h.scrapeSurvivors(ctx, "")
	for _, name := range slices.Sorted(maps.Keys(before)) {
		if a, ok := after[name]; ok {
			line += fmt.Sprintf("; %s: %s", name, changes(before[name], a, "seqchat_gateway_", "seqchat_history_api_"))
		}
	}
	h.logf("  storm: %s", line)
}

// settleWindow: a send fired this long before now should have been
// delivered everywhere in a healthy pipeline.
const settleWindow = 2 * time.Second

// recovery is how a fault was recovered from.
type recovery struct {
	held int // the most messages held up at once
	// took: from the fault to the last moment a send fired before ready,
	// or one older than settleWindow, was still outstanding (to the tick).
	took time.Duration
	// devicesTook: the same, counting only what the devices given to
	// recover waited for (their own sends' answers, their deliveries).
	devicesTook time.Duration
}

// recover waits until every send fired before the service was ready
// again has reached every member, and no send older than settleWindow is
// outstanding at a time when sends fired after it count too (a restarted
// consumer may only stall once its group rebalances), and says how long
// that took; for devices (a killed gateway's), also how long until they
// had everything.
func (h *Harness) recover(ctx context.Context, since, ready time.Time, devices []string) (r recovery, err error) {
	deadline := time.Now().Add(h.cfg.RecoveryTimeout)
	earliest := ready.Add(settleWindow + time.Second)
	const tick = 100 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	// Where the time goes: sends held on the way in (no answer yet: queued,
	// refused, resent) against entries on the way out.
	refusedBefore := h.gen.Refusals()
	var unanswered int
	var lastUnanswered time.Time
	lastHeld, lastDevicesHeld := since, since
	for {
		now := time.Now()
		r.held = max(r.held, h.gen.Outstanding(time.Second))
		if n := h.gen.Unanswered(settleWindow); n > 0 {
			unanswered, lastUnanswered = max(unanswered, n), now
		}
		if devices != nil && (h.gen.OutstandingTo(devices, settleWindow) > 0 || h.gen.OutstandingTo(devices, now.Sub(ready)) > 0) {
			lastDevicesHeld = now
		}
		stale := h.gen.Outstanding(settleWindow)
		if stale > 0 || h.gen.Outstanding(now.Sub(ready)) > 0 {
			lastHeld = now
		} else if now.After(earliest) {
			answered := time.Duration(0)
			if !lastUnanswered.IsZero() {
				answered = lastUnanswered.Add(tick).Sub(since)
			}
			h.logf("recovery: sends unanswered for over %v: at most %d, the last answered %v after the fault; %d refusals to retry meanwhile",
				settleWindow, unanswered, answered.Round(time.Millisecond), h.gen.Refusals()-refusedBefore)
			r.took, r.devicesTook = lastHeld.Add(tick).Sub(since), lastDevicesHeld.Add(tick).Sub(since)
			return r, nil
		}
		if now.After(deadline) {
			return r, fmt.Errorf("%d messages still held %v after the failure", stale, h.cfg.RecoveryTimeout)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-ticker.C:
		}
	}
}

// restartBroker stops the Kafka broker (SIGTERM, as the stack script
// does), starts it again, and waits until every service is ready and the
// held messages are delivered.
func (h *Harness) restartBroker(ctx context.Context) error {
	stoppedAt := time.Now()
	if err := h.stack(ctx, "down", "kafka"); err != nil {
		return err
	}
	down := time.Since(stoppedAt)
	if err := h.stack(ctx, "up", "kafka"); err != nil {
		return err
	}
	return h.recovered(ctx, "broker restart", fmt.Sprintf("stopped after %v, up again after %v",
		down.Round(time.Millisecond), time.Since(stoppedAt).Round(time.Millisecond)), stoppedAt)
}

// killBroker kills the node that leads most raw and sequenced partitions
// and starts it again after BrokerDowntime.
func (h *Harness) killBroker(ctx context.Context) error {
	node, leads, err := h.busiestNode()
	if err != nil {
		return err
	}
	return h.killNode(ctx, "broker kill", node, "leader of "+leads)
}

// killController kills the active KRaft controller and starts it again
// after BrokerDowntime.
func (h *Harness) killController(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, h.cfg.StackScript, "controller").Output()
	if err != nil {
		return fmt.Errorf("%s controller: %w", h.cfg.StackScript, err)
	}
	return h.killNode(ctx, "controller kill", strings.TrimSpace(string(out)), "the active controller")
}

func (h *Harness) killNode(ctx context.Context, fault, node, role string) error {
	at := time.Now()
	if err := h.stack(ctx, "signal", node, "KILL"); err != nil {
		return err
	}
	failover, err := h.failover(ctx, at, h.cfg.BrokerDowntime, "it was down")
	if err != nil {
		return err
	}
	if err := sleep(ctx, time.Until(at.Add(h.cfg.BrokerDowntime))); err != nil {
		return err
	}
	restart := time.Now()
	if err := h.stack(ctx, "up", "kafka"); err != nil {
		return err
	}
	return h.recovered(ctx, fault, fmt.Sprintf("%s (%s) SIGKILL; %s; started again after %v, up %v later",
		node, role, failover, restart.Sub(at).Round(time.Millisecond), time.Since(restart).Round(time.Millisecond)), restart)
}

// failover measures how the cluster recovered from a node's fault (its
// partitions' leaders move once the controller fences it) while the node
// stays out for up to within, and says so for the log.
func (h *Harness) failover(ctx context.Context, at time.Time, within time.Duration, while string) (string, error) {
	wctx, cancel := context.WithDeadline(ctx, at.Add(within))
	defer cancel()
	r, err := h.recover(wctx, at, at, nil)
	switch {
	case err == nil:
		return fmt.Sprintf("everything delivered %v after the fault while %s (held %d messages)", r.took.Round(time.Millisecond), while, r.held), nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("messages still held %v after the fault while %s", within, while), nil
	default:
		return "", err
	}
}

// pauseBroker stops the node that leads most raw and sequenced partitions
// (SIGSTOP) for BrokerPause, then resumes it.
func (h *Harness) pauseBroker(ctx context.Context) error {
	node, leads, err := h.busiestNode()
	if err != nil {
		return err
	}
	at := time.Now()
	if err := h.stack(ctx, "signal", node, "STOP"); err != nil {
		return err
	}
	failover, waitErr := h.failover(ctx, at, h.cfg.BrokerPause, "it was stopped")
	if waitErr == nil {
		waitErr = sleep(ctx, time.Until(at.Add(h.cfg.BrokerPause)))
	}
	// Resumed even when the run is cancelled: a stopped broker outlives it.
	if err := h.stack(context.Background(), "signal", node, "CONT"); err != nil {
		return err
	}
	if waitErr != nil {
		return waitErr
	}
	return h.recovered(ctx, "broker pause", fmt.Sprintf("%s (leader of %s) SIGSTOP for %v; %s; then SIGCONT",
		node, leads, h.cfg.BrokerPause, failover), time.Now())
}

// recovered waits, after a broker fault that began at began, until every
// service is ready and the held messages are delivered, and logs how long
// each took.
func (h *Harness) recovered(ctx context.Context, fault, what string, began time.Time) error {
	// Each service's own time says which one a fault holds up longest.
	names := slices.Sorted(maps.Keys(h.services))
	took := make([]time.Duration, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		g.Go(func() error {
			if err := h.waitReady(gctx, h.services[name]); err != nil {
				return fmt.Errorf("after the %s: %w", fault, err)
			}
			took[i] = time.Since(began)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ready := time.Since(began)
	r, err := h.recover(ctx, began, time.Now(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", fault, err)
	}
	each := make([]string, len(names))
	for i, name := range names {
		each[i] = fmt.Sprintf("%s %v", name, took[i].Round(time.Millisecond))
	}
	h.logf("%s: %s; services ready after %v (%s); all messages delivered after %v; held %d messages",
		fault, what, ready.Round(time.Millisecond), strings.Join(each, ", "), r.took.Round(time.Millisecond), r.held)
	return nil
}

// stack runs the stack script.
func (h *Harness) stack(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, h.cfg.StackScript, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", h.cfg.StackScript, strings.Join(args, " "), err, out)
	}
	return nil
}

// busiestNode names the node ("kafka-N", its KRaft node id) leading most
// partitions of the raw and sequenced topics, and says how many.
func (h *Harness) busiestNode() (node, leads string, err error) {
	admin, err := kafkawire.Config{Brokers: strings.Split(h.cfg.KafkaBrokers, ",")}.NewAdmin()
	if err != nil {
		return "", "", err
	}
	defer admin.Close()
	t := kafkawire.Topics{}.WithDefaults()
	id, n, total, err := kafkawire.BusiestLeader(admin, t.Raw, t.Sequenced)
	if err != nil {
		return "", "", fmt.Errorf("chaos: %w", err)
	}
	return fmt.Sprintf("kafka-%d", id), fmt.Sprintf("%d of %d raw and sequenced partitions", n, total), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
