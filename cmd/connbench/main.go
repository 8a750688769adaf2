// Command connbench measures a gateway by its connections, the dimension
// an IM gateway scales on: steps of idle devices up to what the machine
// allows, recording per step the gateway's RSS, Go heap and stacks,
// goroutines, file descriptors, idle CPU, how fast hellos complete and how
// long a message to a 1,000-member group takes to reach every member; then
// a resume burst (the devices close and say hello again at once with the
// positions they hold: nothing new, so no history query); then a
// reconnect storm: the devices on gateway A, A killed with SIGKILL, all
// reconnect to gateway B, timed until every device has every message, with
// the ClickHouse queries it cost. `make bench-connections` runs it on top
// of `make up`'s stack and services; it starts its own two gateways.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/tools/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "connbench:", err)
		os.Exit(1)
	}
}

type config struct {
	binDir, logDir, brokers, historyURL string
	clickhouse                          chstore.Config
	tokenKey                            string
	steps                               []int
	storm, groupSize, concurrency       int
	idle, rest                          time.Duration
}

func run() error {
	fs := flag.NewFlagSet("connbench", flag.ExitOnError)
	var cfg config
	fs.StringVar(&cfg.binDir, "bin-dir", "bin", "directory of the gateway binary")
	fs.StringVar(&cfg.logDir, "log-dir", ".stack/connbench", "directory of the gateways' logs")
	fs.StringVar(&cfg.brokers, "kafka-brokers", kafkawire.DefaultBrokers, "Kafka bootstrap brokers")
	fs.StringVar(&cfg.historyURL, "history-url", "http://127.0.0.1:8081", "history API the gateways read (make up's)")
	fs.StringVar(&cfg.clickhouse.Addr, "clickhouse-addr", chstore.DefaultAddr, "ClickHouse native-protocol address (its query count)")
	fs.StringVar(&cfg.tokenKey, "token-key", "", "HMAC key of device tokens (SEQCHAT_TOKEN_KEY, required)")
	steps := fs.String("steps", "1000,2000,5000,10000,15000,19000", "idle connections at each step (the gateway's limit is the open-file limit less its reserve)")
	fs.IntVar(&cfg.storm, "storm", 10000, "devices in the reconnect storm (0: none)")
	fs.IntVar(&cfg.groupSize, "group-size", 1000, "members per group (every device is in one; group 0 gets the broadcasts)")
	fs.IntVar(&cfg.concurrency, "concurrency", 200, "devices dialling at once")
	fs.DurationVar(&cfg.idle, "idle", 10*time.Second, "how long idle CPU is measured per step")
	fs.DurationVar(&cfg.rest, "rest", 45*time.Second, "wait after a step's hellos before measuring it (a hello's settle goroutine lives 40 s)")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	if cfg.tokenKey == "" {
		return errors.New("-token-key (SEQCHAT_TOKEN_KEY) is required")
	}
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-steps: %q is not a count", s)
		}
		cfg.steps = append(cfg.steps, n)
	}
	slices.Sort(cfg.steps)
	ctx, stop := service.SignalContext()
	defer stop()
	b, err := newBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.stop()
	return b.run(ctx)
}

type bench struct {
	cfg     config
	a, b    *chaos.Service
	urlA    string
	urlB    string
	ch      driver.Conn
	world   *world
	devices []*device // "d" devices, user i in group i/groupSize
	senders []*device // "s" devices of each group's first member, on B
	convs   []string
	base    usage
}

func newBench(ctx context.Context, cfg config) (*bench, error) {
	if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		return nil, err
	}
	ports, err := chaos.FreePorts(4)
	if err != nil {
		return nil, err
	}
	gw := func(id, listen, admin string) *chaos.Service {
		return &chaos.Service{Name: "gateway-" + id, Bin: filepath.Join(cfg.binDir, "gateway"), AdminAddr: admin,
			Args: []string{"-gateway-id", "connbench-" + id, "-listen-addr", listen, "-admin-addr", admin,
				"-kafka-brokers", cfg.brokers, "-history-url", cfg.historyURL, "-log-format", "json", "-demo=false"},
			LogPath: filepath.Join(cfg.logDir, "gateway-"+id+".log")}
	}
	bn := &bench{cfg: cfg, world: &world{},
		a: gw("a", "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]), b: gw("b", "127.0.0.1:"+ports[2], "127.0.0.1:"+ports[3]),
		urlA: "ws://127.0.0.1:" + ports[0] + "/ws", urlB: "ws://127.0.0.1:" + ports[2] + "/ws"}
	for _, s := range []*chaos.Service{bn.a, bn.b} {
		if err := s.Start(); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.WaitReady(wctx)
		cancel()
		if err != nil {
			bn.stop()
			return nil, err
		}
	}
	if bn.ch, _, err = chstore.Open(ctx, cfg.clickhouse); err != nil {
		bn.stop()
		return nil, err
	}
	signer, err := auth.NewSigner([]byte(cfg.tokenKey))
	if err != nil {
		bn.stop()
		return nil, err
	}
	runID := strconv.FormatInt(time.Now().Unix()%1e6, 36)
	n := max(cfg.steps[len(cfg.steps)-1], cfg.storm)
	now := time.Now()
	token := func(user, dev string) string {
		t, _ := signer.Issue(auth.Claims{UserID: user, DeviceID: dev, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour)})
		return t
	}
	for i := range n {
		user := fmt.Sprintf("cb%s-u%05d", runID, i)
		ip := net.IPv4(127, 0, 0, byte(2+i%249))
		bn.devices = append(bn.devices, &device{user: user, token: token(user, "d"), local: ip, world: bn.world, pos: map[string]uint64{}})
		if i%cfg.groupSize == 0 {
			bn.convs = append(bn.convs, fmt.Sprintf("g:cb%s-%d", runID, i/cfg.groupSize))
			bn.senders = append(bn.senders, &device{user: user, token: token(user, "s"), local: net.IPv4(127, 0, 0, 1),
				world: bn.world, pos: map[string]uint64{}})
		}
	}
	return bn, nil
}

func (bn *bench) stop() {
	for _, d := range append(slices.Clone(bn.devices), bn.senders...) {
		d.close()
	}
	for _, s := range []*chaos.Service{bn.a, bn.b} {
		if s != nil {
			s.Stop(10 * time.Second)
		}
	}
}

func (bn *bench) run(ctx context.Context) error {
	var err error
	if bn.base, err = probe(ctx, bn.a.Pid(), bn.a.AdminAddr); err != nil {
		return err
	}
	if err := bn.createGroups(ctx); err != nil {
		return err
	}
	fmt.Printf("gateway A at rest: RSS %s, heap %s, %d goroutines, %d fds\n\n",
		mib(bn.base.rss), mib(bn.base.heap), int(bn.base.goroutines), int(bn.base.fds))
	fmt.Println("| connections | RSS | per connection (RSS / heap / stacks) | per added connection (RSS / heap) | goroutines | fds | idle CPU | hellos/s (welcome / caught up) | ClickHouse queries per hello | 1,000-member broadcast |")
	fmt.Println("|---:|---:|---|---|---:|---:|---:|---|---:|---:|")
	connected, prev := 0, bn.base
	for _, step := range bn.cfg.steps {
		row, now, err := bn.step(ctx, connected, step, prev)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		connected, prev = step, now
		fmt.Println(row)
	}
	fmt.Printf("\nanomalies at the devices: gaps %d, duplicates %d; refusals %d\n",
		bn.world.gaps.Load(), bn.world.duplicates.Load(), bn.world.refusals.Load())
	if bn.cfg.storm > 0 {
		line, err := bn.resumeRun(ctx, min(bn.cfg.storm, connected))
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		fmt.Println(line)
		line, err = bn.stormRun(ctx, connected)
		if err != nil {
			return fmt.Errorf("storm: %w", err)
		}
		fmt.Println(line)
		fmt.Printf("anomalies at the devices after the storm: gaps %d, duplicates %d; refusals %d\n",
			bn.world.gaps.Load(), bn.world.duplicates.Load(), bn.world.refusals.Load())
	}
	if bn.world.gaps.Load()+bn.world.duplicates.Load() > 0 {
		return errors.New("devices saw gaps or duplicates")
	}
	return nil
}

// createGroups has each group's first member create it, from its second
// device on gateway B (the sender of the broadcasts), with the rest of
// its members.
func (bn *bench) createGroups(ctx context.Context) error {
	target := map[string]uint64{}
	for _, c := range bn.convs {
		target[c] = 1
	}
	g := bn.world.setGoal(target, len(bn.senders))
	for k, s := range bn.senders {
		if err := s.connect(ctx, bn.urlB); err != nil {
			return fmt.Errorf("sender %s: %w", s.user, err)
		}
		var members []string
		for _, d := range bn.devices[k*bn.cfg.groupSize : min(len(bn.devices), (k+1)*bn.cfg.groupSize)][1:] {
			members = append(members, d.user)
		}
		if err := s.send(map[string]any{"type": "send", "conversation_id": bn.convs[k], "client_msg_id": "create-" + bn.convs[k],
			"client_seq": 1, "control": map[string]any{"op": "create_group", "title": "connbench", "user_ids": members}}); err != nil {
			return err
		}
	}
	return bn.wait(ctx, g, 2*time.Minute, "groups created")
}

func (bn *bench) wait(ctx context.Context, g *goal, limit time.Duration, what string) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-g.done:
		return nil
	case <-t.C:
		return fmt.Errorf("%s: not within %v (%d devices short)", what, limit, bn.world.short(g))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dial connects devices concurrently to url; it returns when, since
// start, the last was welcomed and the last had its catch-up done.
func (bn *bench) dial(ctx context.Context, start time.Time, devices []*device, url string) (welcomed, caughtUp time.Duration, err error) {
	var next atomic.Int64
	var lastWelcome, lastSync atomic.Int64
	var wg, caught sync.WaitGroup
	errs := make(chan error, len(devices)+bn.cfg.concurrency)
	for range bn.cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(devices) {
					return
				}
				d := devices[i]
				if err := d.connect(ctx, url); err != nil {
					errs <- fmt.Errorf("%s: %w", d.user, err)
					return
				}
				storeMax(&lastWelcome, int64(time.Since(start)))
				// The next dial does not wait for this catch-up: hellos
				// come as fast as the gateway welcomes them (a storm).
				d.mu.Lock()
				synced := d.synced
				d.mu.Unlock()
				caught.Add(1)
				go func() {
					defer caught.Done()
					select {
					case <-synced:
						storeMax(&lastSync, int64(time.Since(start)))
					case <-time.After(5 * time.Minute):
						errs <- fmt.Errorf("%s: no catch-up within 5 minutes", d.user)
					case <-ctx.Done():
					}
				}()
			}
		}()
	}
	wg.Wait()
	caught.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return time.Duration(lastWelcome.Load()), time.Duration(lastSync.Load()), ctx.Err()
}

func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// step connects devices from..to and measures; prev is the previous
// step's idle probe (the process at rest before the first), so that what
// the added connections cost shows apart from what the process grew to
// under its first ones.
func (bn *bench) step(ctx context.Context, from, to int, prev usage) (string, usage, error) {
	q0, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", usage{}, err
	}
	welcomed, caughtUp, err := bn.dial(ctx, time.Now(), bn.devices[from:to], bn.urlA)
	if err != nil {
		return "", usage{}, err
	}
	q1, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", usage{}, err
	}
	// Let the connects' presence and settles end before the idle
	// measurement; the heap profile (taken after a collection) says what
	// the memory per connection is.
	if err := sleep(ctx, bn.cfg.rest); err != nil {
		return "", usage{}, err
	}
	if err := saveHeapProfile(ctx, bn.a.AdminAddr, filepath.Join(bn.cfg.logDir, fmt.Sprintf("heap-%d.pb.gz", to))); err != nil {
		return "", usage{}, err
	}
	u0, err := probe(ctx, bn.a.Pid(), bn.a.AdminAddr)
	if err != nil {
		return "", usage{}, err
	}
	if err := sleep(ctx, bn.cfg.idle); err != nil {
		return "", usage{}, err
	}
	u1, err := probe(ctx, bn.a.Pid(), bn.a.AdminAddr)
	if err != nil {
		return "", usage{}, err
	}
	took, err := bn.broadcast(ctx, to)
	if err != nil {
		return "", usage{}, err
	}
	n := float64(to)
	perConn := func(now, base float64) string { return fmt.Sprintf("%.1f", (now-base)/n/1024) }
	added := float64(to - from)
	perAdded := func(now, before float64) string { return fmt.Sprintf("%.1f", (now-before)/added/1024) }
	return fmt.Sprintf("| %d | %s | %s / %s / %s KiB | %s / %s KiB | %d | %d | %.1f%% | %.0f / %.0f | %.2f | %d ms |",
		to, mib(u1.rss), perConn(u1.rss, bn.base.rss), perConn(u1.heap, bn.base.heap), perConn(u1.stack, bn.base.stack),
		perAdded(u1.rss, prev.rss), perAdded(u1.heap, prev.heap),
		int(u1.goroutines), int(u1.fds), 100*(u1.cpuSeconds-u0.cpuSeconds)/bn.cfg.idle.Seconds(),
		added/welcomed.Seconds(), added/caughtUp.Seconds(), float64(q1-q0)/added, took.Milliseconds()), u1, nil
}

// broadcast sends one message to group 0 and times its arrival at every
// connected member (and the sender's own device).
func (bn *bench) broadcast(ctx context.Context, connected int) (time.Duration, error) {
	s, conv := bn.senders[0], bn.convs[0]
	head := s.position(conv)
	members := min(connected, bn.cfg.groupSize)
	g := bn.world.setGoal(map[string]uint64{conv: head + 1}, members+1)
	start := time.Now()
	if err := s.send(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": fmt.Sprintf("b-%d", head+1),
		"client_seq": head + 1, "message": map[string]any{"content_type": "text/plain", "body": "broadcast"}}); err != nil {
		return 0, err
	}
	if err := bn.wait(ctx, g, time.Minute, "broadcast"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// resumeRun closes n devices and has them say hello to A again at once
// with the positions they hold: nothing is new for them, so the gateway
// needs no history query (issue 16's hello).
func (bn *bench) resumeRun(ctx context.Context, n int) (string, error) {
	devices := bn.devices[:n]
	for _, d := range devices {
		d.close()
	}
	q0, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", err
	}
	welcomed, caughtUp, err := bn.dial(ctx, time.Now(), devices, bn.urlA)
	if err != nil {
		return "", err
	}
	q1, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("\nresume: %d devices closed and back on A at once with the positions they hold (nothing new): "+
		"%.0f hellos/s to welcome, %.0f to caught up (all in %.1f s); ClickHouse SELECTs %d",
		n, float64(n)/welcomed.Seconds(), float64(n)/caughtUp.Seconds(), caughtUp.Seconds(), q1-q0), nil
}

// stormRun keeps the first storm devices on A (closing the rest), kills A,
// sends one message to each of their groups and has every device
// reconnect to B with the positions it holds.
func (bn *bench) stormRun(ctx context.Context, connected int) (string, error) {
	if connected < bn.cfg.storm {
		if _, _, err := bn.dial(ctx, time.Now(), bn.devices[connected:bn.cfg.storm], bn.urlA); err != nil {
			return "", err
		}
	}
	for _, d := range bn.devices[bn.cfg.storm:connected] {
		d.close()
	}
	if err := sleep(ctx, 5*time.Second); err != nil {
		return "", err
	}
	storm := bn.devices[:bn.cfg.storm]
	groups := (bn.cfg.storm + bn.cfg.groupSize - 1) / bn.cfg.groupSize
	target := map[string]uint64{}
	for k := range groups {
		target[bn.convs[k]] = bn.senders[k].position(bn.convs[k]) + 1
	}
	q0, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", err
	}
	g := bn.world.setGoal(target, len(storm)+groups)
	killed := time.Now()
	bn.a.Kill()
	for k := range groups {
		s, conv := bn.senders[k], bn.convs[k]
		if err := s.send(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": fmt.Sprintf("storm-%d", target[conv]),
			"client_seq": target[conv], "message": map[string]any{"content_type": "text/plain", "body": "while A was down"}}); err != nil {
			return "", err
		}
	}
	welcomed, caughtUp, err := bn.dial(ctx, killed, storm, bn.urlB)
	if err != nil {
		return "", err
	}
	if err := bn.wait(ctx, g, 10*time.Minute, "every device has every message"); err != nil {
		return "", err
	}
	all := time.Since(killed)
	q1, err := selectQueries(ctx, bn.ch)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("\nreconnect storm: %d devices on A, A killed (SIGKILL), all to B: every device welcomed %.1f s and caught up %.1f s after the kill, "+
		"every device has every message after %.1f s; ClickHouse SELECTs %d (%.2f per device)",
		len(storm), welcomed.Seconds(), caughtUp.Seconds(), all.Seconds(), q1-q0, float64(q1-q0)/float64(len(storm))), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
