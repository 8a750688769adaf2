package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/fanout"
	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const (
	partitions   = 4
	serviceToken = "e2e-service-token-0123456789"
)

var tokenKey = []byte(strings.Repeat("e2e-key-", 5))

// pipeline is the whole system in this process: sequencer, fanout,
// history sink and read API, and gateways, on the real broker and
// ClickHouse, with topics and database of its own.
type pipeline struct {
	t          testing.TB
	topics     kafkawire.Topics
	history    string // read API base URL
	signer     *auth.Signer
	gateways   map[string]*runningGateway
	log        *slog.Logger // printed if the test fails
	sink       history.Config
	stopSink   func()
	fanout     fanout.Config
	stopFanout func()
	clickhouse driver.Conn // history's database
	database   string
	// historyReads counts the read API's requests (every method but PUT,
	// which stores positions): each one queries ClickHouse.
	historyReads atomic.Int64

	// seqCfg starts the sequencer (startSequencer), stopSequencer stops it.
	seqCfg        sequencer.Config
	stopSequencer func()
}

type runningGateway struct {
	addr string
	stop func()
}

// startPipeline runs the pipeline's services in process on fresh topics;
// tune adjusts the sequencer's configuration.
func startPipeline(t testing.TB, tune ...func(*sequencer.Config)) *pipeline {
	t.Helper()
	admin := stacktest.Admin(t)
	prefix := stacktest.Name(t, "e2e")
	topics := kafkawire.PrefixedTopics(prefix)
	specs := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, _ := admin.ListTopics()
		for name := range all {
			if strings.HasPrefix(name, prefix+".") {
				admin.DeleteTopic(name)
			}
		}
	})
	signer, err := auth.NewSigner(tokenKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, topics: topics, signer: signer, gateways: map[string]*runningGateway{},
		log: stacktest.Logger(t)}
	kcfg := stacktest.Kafka(t)

	seqCfg := sequencer.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".sequencer", Logger: p.log.With("service", "sequencer")}
	for _, f := range tune {
		f(&seqCfg)
	}
	p.seqCfg = seqCfg
	p.startSequencer()
	p.fanout = fanout.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".fanout", Logger: p.log.With("service", "fanout")}
	p.startFanout()

	conn, db := stacktest.ClickHouse(t)
	p.clickhouse, p.database = conn, db
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	p.sink = history.Config{Kafka: kcfg, Topics: topics, GroupID: prefix + ".history", Store: store,
		BatchMaxWait: 20 * time.Millisecond, Logger: p.log.With("service", "history")}
	p.startSink()
	progress := history.NewProgress(kcfg, topics, prefix+".history")
	t.Cleanup(func() { progress.Close() })
	api, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: serviceToken, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			p.historyReads.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.history = srv.URL
	return p
}

// startSequencer starts the sequencer (again, after stopSequencer) with
// p.seqCfg.
func (p *pipeline) startSequencer() {
	p.t.Helper()
	seq, err := sequencer.New(p.seqCfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.stopSequencer = p.run("sequencer", seq.Run)
}

// startFanout starts the fanout (again, after stopFanout).
func (p *pipeline) startFanout() {
	p.t.Helper()
	fan, err := fanout.New(p.fanout)
	if err != nil {
		p.t.Fatal(err)
	}
	p.stopFanout = p.run("fanout", fan.Run)
}

// startSink starts the history sink (again, after stopSink).
func (p *pipeline) startSink() {
	p.t.Helper()
	sink, err := history.New(p.sink)
	if err != nil {
		p.t.Fatal(err)
	}
	p.stopSink = p.run("history sink", sink.Run)
}

// waitPosition polls the history service until the device's stored
// position in conv reaches seq (the gateway saves it asynchronously).
func (p *pipeline) waitPosition(user, device, conv string, seq uint64) {
	p.t.Helper()
	h := &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken}
	stacktest.Eventually(p.t, 30*time.Second, fmt.Sprintf("position %d of %s/%s in %s", seq, user, device, conv), func() bool {
		pos, _, err := h.Positions(context.Background(), user, device)
		return err == nil && pos[conv] >= seq
	})
}

// waitHistory polls until history holds conv completely up to seq.
func (p *pipeline) waitHistory(conv string, seq uint64) {
	p.t.Helper()
	h := &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken}
	stacktest.Eventually(p.t, 30*time.Second, fmt.Sprintf("history of %s up to %d", conv, seq), func() bool {
		page, err := h.Read(context.Background(), conv, "alice", seq, 1)
		return err == nil && page.CompleteUpTo >= seq
	})
}

// run starts a component until the test ends.
func (p *pipeline) run(name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				p.t.Errorf("%s: %v", name, err)
			}
		})
	}
	p.t.Cleanup(stop)
	return stop
}

// startGateway runs gateway id and waits until it consumes its topic.
func (p *pipeline) startGateway(id string, tune ...func(*gateway.Config)) {
	p.t.Helper()
	cfg := gateway.Config{Kafka: stacktest.Kafka(p.t), Topics: p.topics,
		Layout: kafkawire.Layout{Partitions: 2}, GatewayID: id, TokenKey: tokenKey,
		History: &gateway.HistoryClient{BaseURL: p.history, Token: serviceToken},
		GapWait: 200 * time.Millisecond, MaxFrameBytes: 4096, Logger: p.log.With("service", "gateway", "gateway_id", id),
		// These clients do not resend refused sends: admission has its
		// own test (TestOverloadedGatewayRefusesWithARetryHint).
		OverloadDelay: -1}
	for _, f := range tune {
		f(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	stop := p.run("gateway "+id, func(ctx context.Context) error { return g.Run(ctx, ln) })
	select {
	case <-g.Started():
	case <-time.After(time.Minute):
		p.t.Fatalf("gateway %s did not start within a minute", id)
	}
	p.gateways[id] = &runningGateway{addr: ln.Addr().String(), stop: stop}
}

func (p *pipeline) token(user, device string, ttl time.Duration) string {
	p.t.Helper()
	now := time.Now()
	tok, err := p.signer.Issue(auth.Claims{UserID: user, DeviceID: device, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(ttl)})
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// frame is any server frame, decoded loosely.
type frame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
	Epoch          uint64 `json:"epoch"`
	ClientMsgID    string `json:"client_msg_id"`
	SenderUserID   string `json:"sender_user_id"`
	Code           string `json:"code"`
	// Message: an error's text (a JSON string) or a msg's message object.
	Message      json.RawMessage `json:"message"`
	Fatal        bool            `json:"fatal"`
	Ref          string          `json:"ref"`
	RetryAfterMs int64           `json:"retry_after_ms"`
	UpToSeq      uint64          `json:"up_to_seq"`
	ID           string          `json:"id"`
	Event        *struct {
		Kind    string   `json:"kind"`
		UserIDs []string `json:"user_ids"`
	} `json:"event"`
	Revision *struct {
		Op        string `json:"op"`
		TargetSeq uint64 `json:"target_seq"`
	} `json:"revision"`
	Edited   bool `json:"edited"`
	Recalled bool `json:"recalled"`
	// UserID: a receipt's reader; Conversations: the conversations list.
	UserID        string                         `json:"user_id"`
	Conversations []historyapi.ConversationState `json:"conversations"`
}

// client is one device's WebSocket connection, recording what it receives.
type client struct {
	t      testing.TB
	user   string
	device string
	ws     *websocket.Conn

	mu       sync.Mutex
	frames   []frame
	seqs     map[string][]uint64  // conversation -> seqs of msg frames, as received
	arrivals map[string]time.Time // client_msg_id of a msg frame -> when it arrived
	changed  chan struct{}
	closed   chan struct{} // the server closed the connection
	// closeCode is the server's WebSocket close code (set before closed
	// is closed; 0: the connection ended without a close frame).
	closeCode int
	wmu       sync.Mutex
}

// dial connects user/device to gateway gw and says hello (nil token: a
// valid one) with resume positions.
func (p *pipeline) dial(gw, user, device string, resume map[string]uint64) *client {
	p.t.Helper()
	c := p.connect(gw, user, device)
	hello := map[string]any{"type": "hello", "token": p.token(user, device, time.Hour)}
	if resume != nil {
		hello["resume"] = resume
	}
	c.sendJSON(hello)
	c.waitFrame("welcome", func(f frame) bool { return f.Type == "welcome" })
	return c
}

// connect opens the WebSocket without saying hello.
func (p *pipeline) connect(gw, user, device string) *client {
	p.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.gateways[gw].addr+"/ws", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	c := &client{t: p.t, user: user, device: device, ws: ws, seqs: map[string][]uint64{}, arrivals: map[string]time.Time{},
		changed: make(chan struct{}, 1), closed: make(chan struct{})}
	go c.readLoop()
	p.t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) {
				c.closeCode = ce.Code
			}
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("%s/%s: undecodable frame %q", c.user, c.device, b)
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		if f.Type == "msg" {
			c.seqs[f.ConversationID] = append(c.seqs[f.ConversationID], f.Seq)
			c.arrivals[f.ClientMsgID] = time.Now()
		}
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.TextMessage, b)
}

func (c *client) sendRaw(kind int, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.WriteMessage(kind, b) // errors show as a closed connection
}

func (c *client) send(conv, cmid string, clientSeq uint64, body string) {
	c.sendJSON(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": cmid, "client_seq": clientSeq,
		"message": map[string]string{"content_type": "text/plain", "body": body}})
}

func (c *client) control(conv, cmid string, clientSeq uint64, ctl map[string]any) {
	c.sendJSON(map[string]any{"type": "send", "conversation_id": conv, "client_msg_id": cmid, "client_seq": clientSeq, "control": ctl})
}

// waitFrame waits until a received frame matches and returns it.
func (c *client) waitFrame(what string, match func(frame) bool) frame {
	c.t.Helper()
	var f frame
	c.waitFor(what, func() bool {
		for _, g := range c.frames {
			if match(g) {
				f = g
				return true
			}
		}
		return false
	})
	return f
}

// waitFor waits until cond (called under the client's lock) holds.
func (c *client) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.t.Fatalf("%s/%s: timed out waiting for %s; frames: %+v", c.user, c.device, what, c.frames)
		}
	}
}

// waitSeqs waits until the device received n entries of conv.
func (c *client) waitSeqs(conv string, n int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%d entries of %s", n, conv), func() bool { return len(c.seqs[conv]) >= n })
}

// frameCount is how many frames the device received so far.
func (c *client) frameCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// answer waits for the answer to send cmid among the frames received
// after the first n: accepted, or an error about it.
func (c *client) answer(cmid string, n int) frame {
	c.t.Helper()
	var f frame
	c.waitFor("an answer to "+cmid, func() bool {
		for _, g := range c.frames[n:] {
			if (g.Type == "accepted" && g.ClientMsgID == cmid) || (g.Type == "error" && g.Ref == cmid) {
				f = g
				return true
			}
		}
		return false
	})
	return f
}

// got returns the seqs received of conv.
func (c *client) got(conv string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.seqs[conv]...)
}

// errorFrame waits for an error (or rejected) frame with code.
func (c *client) expectCode(typ, code string) frame {
	c.t.Helper()
	return c.waitFrame(typ+" "+code, func(f frame) bool { return f.Type == typ && f.Code == code })
}

// waitClosed waits until the server closed the connection and returns its
// close code.
func (c *client) waitClosed() int {
	c.t.Helper()
	select {
	case <-c.closed:
		return c.closeCode
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s/%s: the server did not close the connection", c.user, c.device)
		return 0
	}
}

// seqRange is lo..hi.
func seqRange(lo, hi uint64) []uint64 {
	var out []uint64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}
