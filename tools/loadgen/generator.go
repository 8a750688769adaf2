package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seqchat/seqchat/client"
	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/tools/centrifugo"
)

// Generator runs one load run. Build it with New, run it once with Run.
type Generator struct {
	cfg    Config
	topo   topology
	signer *auth.Signer // seqchat only
	ver    *Verifier

	loadStarted chan struct{} // closed when the load phase starts
	stopSending chan struct{} // closed by StopSending
	stopOnce    sync.Once

	mu         sync.Mutex
	changed    chan struct{}       // pinged (never blocks) on every answer and delivery
	loading    bool                // the load phase has started: count and measure
	sends      map[string]*pending // load sends by client_msg_id
	open       map[string]*pending // load sends not yet answered and fully delivered
	delivered  map[viewKey]bool    // (device, client_msg_id) first arrivals
	setupSeen  map[viewKey]bool    // (device, group) that saw seq 1
	counts     Counts
	rejections map[string]int
	refusals   map[string]int // retried answers by code
	latencies  []time.Duration
	// The two legs of the latency where the target says when it sequenced
	// a message: intended send time to sequenced (once per send), and
	// sequenced to each arrival (clocks of one machine, ms resolution).
	toSequenced, fromSequenced []time.Duration
	// fromAttempt: each arrival from the last write of its send, the one
	// that was accepted (a refused send's wait before its retry left out).
	fromAttempt []time.Duration
	window      []time.Duration // latencies since the last progress line
	hist        *Histogram
	lastArrive  time.Time
	lastSend    time.Time
	downtimes   []time.Duration      // from a connection's loss to its replacement
	gatewayOf   map[string]string    // user -> the gateway of its last connection
	connectedAt map[string]time.Time // user -> when its last connection was up
}

// pending is a load send awaiting its answer and deliveries.
type pending struct {
	conv     string
	due      time.Time     // intended send time: latency is measured from it
	attempt  time.Time     // the last write of the send to a connection
	toSeq    time.Duration // from due to its seq (its first delivery says); 0 before
	toAll    time.Duration // from due to its latest delivery so far
	sender   string
	members  []string // the conversation's member devices (shared, read-only)
	got      int      // member devices it reached
	outcome  Outcome
	answered bool
}

// done reports whether nothing more is awaited for the send.
func (p *pending) done() bool {
	return p.answered && (p.outcome != OutcomeAccepted || p.got >= len(p.members))
}

// New checks cfg and builds a generator.
func New(cfg Config) (*Generator, error) {
	cfg.setDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var signer *auth.Signer
	if cfg.Target == TargetSeqchat {
		var err error
		if signer, err = auth.NewSigner(cfg.TokenKey); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	g := &Generator{cfg: cfg, topo: buildTopology(cfg), signer: signer, ver: NewVerifier(),
		loadStarted: make(chan struct{}), stopSending: make(chan struct{}),
		changed: make(chan struct{}, 1), sends: map[string]*pending{}, open: map[string]*pending{}, delivered: map[viewKey]bool{}, gatewayOf: map[string]string{}, connectedAt: map[string]time.Time{},
		setupSeen: map[viewKey]bool{}, rejections: map[string]int{}, refusals: map[string]int{}, hist: NewHistogram()}
	for _, cv := range g.topo.convs {
		g.ver.AddConversation(cv.id, g.memberNames(cv))
	}
	return g, nil
}

// RunID is the run's id prefix (generated when the config had none).
func (g *Generator) RunID() string { return g.cfg.RunID }

func (g *Generator) memberNames(cv conversation) []string {
	out := make([]string, len(cv.members))
	for i, m := range cv.members {
		out[i] = g.topo.users[m]
	}
	return out
}

// Run connects the devices, creates the groups (Centrifugo: subscribes
// every member to its conversations' channels), fires the load, waits for
// the deliveries and returns the result, writing a progress line every
// second to progress (nil: none). Seqchat devices whose connection drops
// reconnect, resume and retry unanswered sends, as real clients do;
// Centrifugo connections do not reconnect. An error means the run could
// not be made (setup failed, ctx cancelled); guarantee violations are in
// the result's Anomalies.
func (g *Generator) Run(ctx context.Context, progress io.Writer) (*Result, error) {
	started := time.Now()
	devices, err := g.connect(ctx)
	if err != nil {
		return nil, err
	}
	var readers sync.WaitGroup
	defer func() {
		for _, d := range devices {
			d.close()
		}
		readers.Wait()
	}()
	for _, d := range devices {
		readers.Add(1)
		go func() {
			defer readers.Done()
			d.run()
		}()
	}
	clientSeq := map[viewKey]uint64{}
	if g.cfg.Target == TargetSeqchat {
		if err := g.createGroups(ctx, devices, clientSeq); err != nil {
			return nil, err
		}
	}

	if g.cfg.Warmup > 0 {
		select {
		case <-time.After(g.cfg.Warmup):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g.mu.Lock()
	g.loading = true
	g.mu.Unlock()
	loadStart := time.Now()
	close(g.loadStarted)
	stopProgress := g.startProgress(progress, loadStart)
	err = g.fire(ctx, devices, clientSeq, loadStart)
	if err == nil {
		err = g.drain(ctx)
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		d.close()
	}
	readers.Wait()
	return g.result(started, loadStart), nil
}

// LoadStarted is closed when the load phase starts (setup is done).
func (g *Generator) LoadStarted() <-chan struct{} { return g.loadStarted }

// StopSending ends the load phase early: no send is fired after it, and
// Run goes on to wait for the outstanding deliveries.
func (g *Generator) StopSending() { g.stopOnce.Do(func() { close(g.stopSending) }) }

// Progress is the load phase's counts so far.
func (g *Generator) Progress() Counts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.counts
}

// Outstanding counts the load sends due more than age ago that are still
// unanswered or not yet delivered to every member: the messages a failure
// holds up.
func (g *Generator) Outstanding(age time.Duration) int {
	return g.countOpen(age, func(*pending) bool { return true })
}

// Unanswered counts the load sends due more than age ago that have no
// answer yet (queued in a client, refused and waiting to retry, or in
// flight): of the outstanding ones, those held up on the way in.
func (g *Generator) Unanswered(age time.Duration) int {
	return g.countOpen(age, func(p *pending) bool { return !p.answered })
}

// LongestWaits is, for each conversation with a sequenced send due in
// [from, to), the longest any of those took from its intended time to its
// seq, and to its latest delivery: how long a repartition paused the
// conversations it caught sending.
func (g *Generator) LongestWaits(from, to time.Time) (toSeq, toDelivered []time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	type longest struct{ seq, delivered time.Duration }
	convs := map[string]longest{}
	for _, p := range g.sends {
		if p.toSeq > 0 && !p.due.Before(from) && p.due.Before(to) {
			l := convs[p.conv]
			convs[p.conv] = longest{max(l.seq, p.toSeq), max(l.delivered, p.toAll)}
		}
	}
	for _, l := range convs {
		toSeq, toDelivered = append(toSeq, l.seq), append(toDelivered, l.delivered)
	}
	return toSeq, toDelivered
}

// DevicesOn names the devices whose last connection was to gateway (as
// given in Config.Gateways).
func (g *Generator) DevicesOn(gateway string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var users []string
	for u, gw := range g.gatewayOf {
		if gw == gateway {
			users = append(users, u)
		}
	}
	return users
}

// ConnectedSince says how long after since each of users that connected
// again since then did so, in order (a gateway kill's reconnect storm).
func (g *Generator) ConnectedSince(users []string, since time.Time) []time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []time.Duration
	for _, u := range users {
		if at := g.connectedAt[u]; at.After(since) {
			out = append(out, at.Sub(since))
		}
	}
	slices.Sort(out)
	return out
}

// OutstandingTo counts the load sends due more than age ago that one of
// the devices of users still waits for: its own send not answered yet,
// or a message of one of its conversations not delivered to it yet.
func (g *Generator) OutstandingTo(users []string, age time.Duration) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := make(map[string]bool, len(users))
	for _, u := range users {
		set[u] = true
	}
	return g.countOpenLocked(age, func(cmid string, p *pending) bool {
		if set[p.sender] && !p.answered {
			return true
		}
		for _, m := range p.members {
			if set[m] && !g.delivered[viewKey{m, cmid}] {
				return true
			}
		}
		return false
	})
}

// countOpen counts the open sends due more than age ago for which which
// holds.
func (g *Generator) countOpen(age time.Duration, which func(*pending) bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.countOpenLocked(age, func(_ string, p *pending) bool { return which(p) })
}

func (g *Generator) countOpenLocked(age time.Duration, which func(cmid string, p *pending) bool) int {
	cut := time.Now().Add(-age)
	n := 0
	for cmid, p := range g.open {
		if p.due.Before(cut) && which(cmid, p) {
			n++
		}
	}
	return n
}

// Refusals counts the answers that asked a client to retry a send later
// (unavailable, rate_limited) so far.
func (g *Generator) Refusals() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.refusals {
		n += c
	}
	return n
}

// Message is an accepted load send and the seq it was delivered with
// (zero if no device got it).
type Message struct {
	Conv        string
	ClientMsgID string
	Seq         uint64
}

// Accepted lists the load sends answered accepted. Call it after Run.
func (g *Generator) Accepted() []Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Message, 0, g.counts.Accepted)
	for cmid, p := range g.sends {
		if p.answered && p.outcome == OutcomeAccepted {
			out = append(out, Message{Conv: p.conv, ClientMsgID: cmid, Seq: g.ver.SeqOf(cmid)})
		}
	}
	return out
}

// Conversations lists the run's conversation ids.
func (g *Generator) Conversations() []string {
	out := make([]string, len(g.topo.convs))
	for i, cv := range g.topo.convs {
		out[i] = cv.id
	}
	return out
}

// connect dials every user's connection, a few at a time, spread over
// the gateways.
func (g *Generator) connect(ctx context.Context) ([]conn, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.SetupTimeout)
	defer cancel()
	devices := make([]conn, len(g.topo.users))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	now := time.Now()
	expires := now.Add(g.cfg.SetupTimeout + g.cfg.Duration + g.cfg.Drain + time.Hour)
	convsOf := make([][]string, len(g.topo.users)) // Centrifugo: the channels to subscribe to
	for _, cv := range g.topo.convs {
		for _, m := range cv.members {
			convsOf[m] = append(convsOf[m], cv.id)
		}
	}
	for i, u := range g.topo.users {
		switch g.cfg.Target {
		case TargetCentrifugo:
			tok := centrifugo.Token(g.cfg.CentrifugoSecret, u, expires)
			devices[i] = newCFConn(u, g.cfg.Gateways[i%len(g.cfg.Gateways)], tok, convsOf[i], g)
		default:
			tok, err := g.signer.Issue(auth.Claims{UserID: u, DeviceID: "d", IssuedAt: now.Add(-time.Minute), ExpiresAt: expires})
			if err != nil {
				return nil, fmt.Errorf("%w: token for %s: %v", ErrSetup, u, err)
			}
			devices[i] = newDevice(u, tok, g.cfg.Gateways, i, g)
		}
		eg.Go(func() error { return devices[i].connect(ctx) })
	}
	if err := eg.Wait(); err != nil {
		for _, d := range devices {
			if d != nil {
				d.close()
			}
		}
		return nil, fmt.Errorf("%w: connect: %v", ErrSetup, err)
	}
	return devices, nil
}

// createGroups has each group's first member create it with the others
// and waits until every member saw its seq 1.
func (g *Generator) createGroups(ctx context.Context, devices []conn, clientSeq map[viewKey]uint64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.SetupTimeout)
	defer cancel()
	want := 0
	for _, cv := range g.topo.convs {
		if !cv.group {
			continue
		}
		names := g.memberNames(cv)
		creator := names[0]
		clientSeq[viewKey{creator, cv.id}]++
		cmid := cv.id[2:] + "-create"
		g.ver.Sent(Send{Device: creator, Conv: cv.id, ClientMsgID: cmid, ClientSeq: 1})
		if !devices[cv.members[0]].send(ctx, outMsg{conv: cv.id, cmid: cmid, clientSeq: 1,
			control: &client.Control{Op: "create_group", Title: cv.id[2:], UserIDs: names[1:]}}) {
			return fmt.Errorf("%w: create %s: connection of %s ended", ErrSetup, cv.id, creator)
		}
		want += len(names)
	}
	for {
		g.mu.Lock()
		seen, refused := len(g.setupSeen), len(g.rejections) > 0
		var codes string
		if refused {
			codes = fmt.Sprint(g.rejections)
		}
		g.mu.Unlock()
		switch {
		case seen >= want:
			return nil
		case refused:
			return fmt.Errorf("%w: group creation refused: %s (does run id %q exist already?)", ErrSetup, codes, g.cfg.RunID)
		}
		select {
		case <-g.changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d members saw their group's creation: %v", ErrSetup, seen, want, ctx.Err())
		}
	}
}

// fire is the open-loop scheduler: send i is due at loadStart + i/Rate
// whatever the answers do; a late send keeps its intended time. It ends
// after Duration or at StopSending.
func (g *Generator) fire(ctx context.Context, devices []conn, clientSeq map[viewKey]uint64, loadStart time.Time) error {
	rng := rand.New(rand.NewPCG(g.cfg.Seed, g.cfg.Seed^0x9e3779b97f4a7c15))
	memberNames := map[string][]string{}
	for _, cv := range g.topo.convs {
		memberNames[cv.id] = g.memberNames(cv)
	}
	return OpenLoop(ctx, loadStart, g.cfg.Rate, g.cfg.Duration, g.stopSending, func(i int, due time.Time) error {
		cv := g.topo.convs[rng.IntN(len(g.topo.convs))]
		m := cv.members[rng.IntN(len(cv.members))]
		user := g.topo.users[m]
		k := viewKey{user, cv.id}
		clientSeq[k]++
		cmid := fmt.Sprintf("%s-m%d", g.cfg.RunID, i)
		g.ver.Sent(Send{Device: user, Conv: cv.id, ClientMsgID: cmid, ClientSeq: clientSeq[k]})
		p := &pending{conv: cv.id, due: due, sender: user, members: memberNames[cv.id]}
		g.mu.Lock()
		g.sends[cmid], g.open[cmid] = p, p
		g.lastSend = due
		g.counts.Sends++
		g.counts.ExpectedDeliveries += len(cv.members)
		if Late(due, time.Now()) {
			g.counts.LateSends++
		}
		g.mu.Unlock()
		devices[m].send(ctx, outMsg{conv: cv.id, cmid: cmid, clientSeq: clientSeq[k], body: loadBody(cmid)})
		return ctx.Err()
	})
}

// drain waits until every send is answered and every expected delivery
// arrived, or Drain passed.
func (g *Generator) drain(ctx context.Context) error {
	deadline := time.NewTimer(g.cfg.Drain)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		c := g.counts
		g.mu.Unlock()
		if c.Accepted+c.Rejected+c.Errors >= c.Sends && c.Deliveries >= c.ExpectedDeliveries {
			return nil
		}
		select {
		case <-g.changed:
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *Generator) ping() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// frame takes one frame of user's connection (called from its reader
// goroutine).
func (g *Generator) frame(user string, f frame) {
	now := time.Now()
	defer g.ping()
	switch f.Type {
	case "accepted":
		g.ver.Answered(f.ClientMsgID, OutcomeAccepted)
		g.answer(f.ClientMsgID, OutcomeAccepted, "")
	case "rejected":
		g.ver.Answered(f.ClientMsgID, OutcomeRejected)
		g.answer(f.ClientMsgID, OutcomeRejected, f.Code)
	case "error":
		if f.Ref != "" {
			g.ver.Answered(f.Ref, OutcomeError)
		}
		g.answer(f.Ref, OutcomeError, f.Code)
		g.cfg.Logger.Warn("error frame", "user", user, "code", f.Code, "message", string(f.Message), "ref", f.Ref)
	case "msg":
		g.ver.Arrived(user, f.ConversationID, f.Seq, f.ClientMsgID)
		g.arrived(user, f, now)
	}
}

func (g *Generator) outOfOrder(user, conv string, prev, seq uint64, connection string) {
	g.cfg.Logger.Warn("msg out of order", "user", user, "conversation", conv, "after", prev, "seq", seq, "connection", connection)
}

func (g *Generator) disconnected(user string, err error) {
	g.mu.Lock()
	g.counts.Disconnects++
	g.mu.Unlock()
	if g.cfg.Target == TargetSeqchat {
		g.cfg.Logger.Info("connection lost; reconnecting", "user", user, "err", err)
	} else {
		g.cfg.Logger.Warn("connection lost", "user", user, "err", err)
	}
}

func (g *Generator) attempted(cmid string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.sends[cmid]; s != nil && !s.answered {
		s.attempt = at
	}
}

func (g *Generator) refused(code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.loading {
		g.refusals[code]++
	}
}

func (g *Generator) connected(user, gateway string, down time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gatewayOf[user] = gateway
	g.connectedAt[user] = time.Now()
	if down > 0 {
		g.counts.Reconnects++
		g.downtimes = append(g.downtimes, down)
	}
}

func (g *Generator) answer(cmid string, o Outcome, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if o != OutcomeAccepted {
		g.rejections[code]++
	}
	s := g.sends[cmid]
	if s == nil || s.answered {
		return // a setup send, an error about no send, or a second answer
	}
	s.answered, s.outcome = true, o
	switch o {
	case OutcomeAccepted:
		g.counts.Accepted++
	case OutcomeRejected:
		g.counts.Rejected++
	case OutcomeError:
		g.counts.Errors++
	}
	if o != OutcomeAccepted {
		g.counts.ExpectedDeliveries -= len(s.members)
	}
	if s.done() {
		delete(g.open, cmid)
	}
}

// arrived measures a msg frame at device user.
func (g *Generator) arrived(user string, f frame, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f.Seq == 1 && !g.loading {
		g.setupSeen[viewKey{user, f.ConversationID}] = true
	}
	s := g.sends[f.ClientMsgID]
	k := viewKey{user, f.ClientMsgID}
	if s == nil || g.delivered[k] {
		return // not a load message, or a duplicate (the verifier counts it)
	}
	g.delivered[k] = true
	g.counts.Deliveries++
	if s.got++; s.done() {
		delete(g.open, f.ClientMsgID)
	}
	lat := now.Sub(s.due)
	s.toAll = max(s.toAll, lat)
	if f.SequencedAtMs > 0 {
		seqd := time.UnixMilli(f.SequencedAtMs)
		if s.got == 1 {
			s.toSeq = seqd.Sub(s.due)
			g.toSequenced = append(g.toSequenced, s.toSeq)
		}
		g.fromSequenced = append(g.fromSequenced, now.Sub(seqd))
	}
	g.latencies = append(g.latencies, lat)
	if !s.attempt.IsZero() {
		g.fromAttempt = append(g.fromAttempt, now.Sub(s.attempt))
	}
	g.window = append(g.window, lat)
	g.hist.Add(lat)
	g.lastArrive = now
}

// startProgress writes a line every second until the returned stop is
// called (nil w: none).
func (g *Generator) startProgress(w io.Writer, loadStart time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				g.mu.Lock()
				c := g.counts
				win := g.window
				g.window = nil
				g.mu.Unlock()
				slices.Sort(win)
				fmt.Fprintf(w, "%6.1fs  sends %d  accepted %d  deliveries %d/%d  reconnects %d  p99(1s) %.1fms\n",
					now.Sub(loadStart).Seconds(), c.Sends, c.Accepted, c.Deliveries, c.ExpectedDeliveries, c.Reconnects,
					float64(Percentile(win, 0.99))/float64(time.Millisecond))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// result assembles the run's result once every reader has stopped.
func (g *Generator) result(started, loadStart time.Time) *Result {
	anomalies, examples := g.ver.Finish()
	g.mu.Lock()
	defer g.mu.Unlock()
	r := &Result{
		Config: ResultConfig{Target: g.cfg.Target, Gateways: g.cfg.Gateways, Users: g.cfg.Users, GroupSize: g.cfg.GroupSize, Groups: g.cfg.Groups,
			DMs: g.cfg.DMs, Rate: g.cfg.Rate, Duration: g.cfg.Duration.String(), Drain: g.cfg.Drain.String(),
			RunID: g.cfg.RunID, Seed: g.cfg.Seed},
		StartedAt: started.UTC(), Counts: g.counts, Latency: Summarize(g.latencies),
		Anomalies: anomalies, AnomalyExamples: examples, Rejections: g.rejections, Refusals: g.refusals, Histogram: g.hist,
		Window: Window{LoadStart: loadStart.UTC(), LastSend: g.lastSend.UTC(), LastArrival: g.lastArrive.UTC()},
	}
	if secs := g.lastSend.Sub(loadStart).Seconds(); secs > 0 {
		r.Throughput.AcceptedPerSec = float64(g.counts.Accepted) / secs
	}
	r.ReconnectDowntime = Summarize(g.downtimes)
	if len(g.fromAttempt) > 0 {
		a := Summarize(g.fromAttempt)
		r.AcceptedLatency = &a
	}
	if len(g.toSequenced) > 0 {
		r.Legs = &Legs{SendToSequenced: Summarize(g.toSequenced), SequencedToDelivered: Summarize(g.fromSequenced)}
	}
	if span := g.lastArrive.Sub(loadStart).Seconds(); span > 0 {
		r.Throughput.DeliveriesPerSec = float64(g.counts.Deliveries) / span
	}
	return r
}
