package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/seqchat/seqchat/testsupport/pipelinetest"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const (
	partitions   = 4
	serviceToken = "e2e-service-token-0123456789"
)

var tokenKey = []byte(strings.Repeat("e2e-key-", 5))

// pipeline is the whole system in this process (pipelinetest.Pipeline)
// as these tests name its parts: sequencer, fanout, history sink and read
// API, and gateways, on the real broker and ClickHouse, with topics and
// database of its own.
type pipeline struct {
	pl       *pipelinetest.Pipeline
	t        testing.TB
	topics   kafkawire.Topics
	history  string // read API base URL
	signer   *auth.Signer
	gateways map[string]*runningGateway
	log      *slog.Logger // printed if the test fails
	// sink, fanout and seqCfg start the history sink, the fanout and the
	// sequencer again after stopSink, stopFanout and stopSequencer.
	sink       *history.Config
	fanout     *fanout.Config
	seqCfg     *sequencer.Config
	clickhouse driver.Conn // history's database
	database   string
	// historyReads counts the read API's requests (every method but PUT,
	// which stores positions): each one queries ClickHouse.
	historyReads *atomic.Int64
}

type runningGateway struct {
	addr string
	stop func()
}

// startPipeline runs the pipeline's services in process on fresh topics;
// tune adjusts the sequencer's configuration.
func startPipeline(t testing.TB, tune ...func(*sequencer.Config)) *pipeline {
	t.Helper()
	pl := pipelinetest.Start(t, pipelinetest.Config{Partitions: partitions, Prefix: "e2e", ServiceToken: serviceToken, TokenKey: tokenKey,
		Sequencer: func(c *sequencer.Config) {
			for _, f := range tune {
				f(c)
			}
		}})
	return &pipeline{pl: pl, t: t, topics: pl.Topics, history: pl.HistoryURL, signer: pl.Signer, gateways: map[string]*runningGateway{},
		log: pl.Log, sink: &pl.Sink, fanout: &pl.Fanout, seqCfg: &pl.Sequencer, clickhouse: pl.ClickHouse, database: pl.Database,
		historyReads: &pl.HistoryReads}
}

func (p *pipeline) startSequencer() { p.t.Helper(); p.pl.StartSequencer() }
func (p *pipeline) stopSequencer()  { p.pl.StopSequencer() }
func (p *pipeline) startFanout()    { p.t.Helper(); p.pl.StartFanout() }
func (p *pipeline) stopFanout()     { p.pl.StopFanout() }
func (p *pipeline) startSink()      { p.t.Helper(); p.pl.StartSink() }
func (p *pipeline) stopSink()       { p.pl.StopSink() }

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

// startGateway runs gateway id and waits until it consumes its topic.
func (p *pipeline) startGateway(id string, tune ...func(*gateway.Config)) {
	p.t.Helper()
	g := p.pl.StartGateway(id, append([]func(*gateway.Config){func(c *gateway.Config) {
		c.GapWait, c.MaxFrameBytes = 200*time.Millisecond, 4096
		// These clients do not resend refused sends: admission has its
		// own test (TestOverloadedGatewayRefusesWithARetryHint).
		c.OverloadDelay = -1
	}}, tune...)...)
	p.gateways[id] = &runningGateway{addr: g.Addr, stop: g.Stop}
}

func (p *pipeline) token(user, device string, ttl time.Duration) string {
	p.t.Helper()
	return p.pl.Token(user, device, ttl)
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
