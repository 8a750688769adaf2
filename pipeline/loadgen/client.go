package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// outboundQueue is how many frames wait for one device's writer. When
	// it fills, the scheduler blocks on that device; latency is still
	// measured from each send's intended time, so the stall shows.
	outboundQueue = 4096
	// notYet is the retry time of a send written on a live connection:
	// none. The gateway answers every send it reads, in order, so writing
	// it again there only adds a duplicate; sends are written again after
	// a reconnect or an `unavailable` / `rate_limited` answer.
	notYet = 100 * 365 * 24 * time.Hour
	// unavailableRetry: how soon a send answered `unavailable` is retried;
	// rateLimitedRetry, one answered `rate_limited` (the gateway's bucket
	// refills at its sends-per-second).
	unavailableRetry = 500 * time.Millisecond
	rateLimitedRetry = time.Second
	// maxRetryWait caps the backoff of a send refused again and again
	// (the gateway's longest hint).
	maxRetryWait = 5 * time.Second
	// retryTick is how often a connection writes the sends whose retry time passed.
	retryTick = 100 * time.Millisecond
	// dialTimeout bounds one dial and its hello/welcome exchange.
	dialTimeout = 10 * time.Second
	// maxBackoff caps the wait between reconnect attempts.
	maxBackoff = 2 * time.Second
)

// frame is any server frame, decoded loosely.
type frame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
	ClientMsgID    string `json:"client_msg_id"`
	Code           string `json:"code"`
	// Message is an error's text, or a msg's message object: undecoded.
	Message json.RawMessage `json:"message"`
	Ref     string          `json:"ref"`
	Fatal   bool            `json:"fatal"`
	// SequencedAtMs is when the sequencer gave a msg its seq (0: unknown,
	// as for a peer that has no sequencer).
	SequencedAtMs int64 `json:"sequenced_at_ms"`
	// RetryAfterMs is a refused send's retry hint (0: none).
	RetryAfterMs int64 `json:"retry_after_ms"`
}

// outFrame is a frame queued for the writer; cmid is set for a send, which
// is kept until answered.
type outFrame struct {
	cmid string
	conv string
	b    []byte
}

// inflight is a send a writer took but no answer has come for yet.
type inflight struct {
	conv    string
	b       []byte
	retryAt time.Time // zero: write it as soon as a connection takes it
}

// device is one user's device. When its connection drops it redials (the
// next gateway in the list), says hello with the highest seq it holds in
// each conversation as resume points, and writes again every send that
// got no answer: a real client's behaviour, and what the delivery and
// exactly-once guarantees are meant to survive.
type device struct {
	user     string
	token    string
	gateways []string
	events   connEvents

	out     chan outFrame // survives reconnects
	closing chan struct{} // closed by close()
	done    chan struct{} // closed when run returns

	closeOnce sync.Once

	mu        sync.Mutex
	ws        *websocket.Conn // the current connection; nil before the first dial
	next      int             // the gateway to dial next
	positions map[string]uint64
	// The current connection, for diagnostics: how many dials so far, to
	// which gateway, with which resume points.
	dials   int
	url     string
	resumed map[string]uint64
	pending map[string]*inflight
	// gate holds back a conversation's sends after one was refused: none
	// is written before it, so that the refused ones go again together and
	// in order, earliest first, as the protocol asks.
	gate map[string]time.Time
	// rounds counts, per conversation, the refusals in a row since one of
	// its sends was last answered: the backoff grows with them.
	rounds map[string]int
	order  []string // pending's keys in first-write order (with stale entries)
}

func newDevice(user, token string, gateways []string, first int, events connEvents) *device {
	return &device{user: user, token: token, gateways: gateways, next: first % len(gateways), events: events,
		out: make(chan outFrame, outboundQueue), closing: make(chan struct{}), done: make(chan struct{}),
		positions: map[string]uint64{}, pending: map[string]*inflight{}, gate: map[string]time.Time{}, rounds: map[string]int{}}
}

// connect makes the first connection (failing the setup if it cannot).
func (d *device) connect(ctx context.Context) error {
	ws, err := d.dial(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.ws = ws
	d.mu.Unlock()
	return nil
}

// dial connects to the next gateway, says hello with the resume points
// and waits for welcome.
func (d *device) dial(ctx context.Context) (*websocket.Conn, error) {
	d.mu.Lock()
	url := d.gateways[d.next]
	d.next = (d.next + 1) % len(d.gateways)
	d.dials++
	d.url = url
	hello := map[string]any{"type": "hello", "token": d.token}
	d.resumed = nil
	if len(d.positions) > 0 {
		resume := make(map[string]uint64, len(d.positions))
		d.resumed = resume
		for c, s := range d.positions {
			resume[c] = s
		}
		hello["resume"] = resume
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s for %s: %w", url, d.user, err)
	}
	dl, _ := ctx.Deadline()
	ws.SetWriteDeadline(dl)
	ws.SetReadDeadline(dl)
	if err := ws.WriteJSON(hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello from %s: %w", d.user, err)
	}
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("welcome for %s: %w", d.user, err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "welcome" {
		ws.Close()
		return nil, fmt.Errorf("%s: expected welcome, got %q", d.user, b)
	}
	ws.SetWriteDeadline(time.Time{})
	ws.SetReadDeadline(time.Time{})
	return ws, nil
}

// run serves connections until close is called: when one drops, it
// redials with backoff. Call connect first.
func (d *device) run() {
	defer close(d.done)
	d.mu.Lock()
	ws := d.ws
	d.mu.Unlock()
	for {
		err := d.serve(ws)
		if d.isClosing() {
			return
		}
		d.events.disconnected(d.user, err)
		lostAt := time.Now()
		if ws = d.redial(); ws == nil {
			return
		}
		d.events.reconnected(d.user, time.Since(lostAt))
	}
}

// redial dials until a connection is up (nil if close came first).
func (d *device) redial() *websocket.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 50 * time.Millisecond
	for {
		ws, err := d.dial(ctx)
		if err == nil {
			d.mu.Lock()
			d.ws = ws
			d.mu.Unlock()
			if d.isClosing() { // close ran between dial and the store
				ws.Close()
				return nil
			}
			return ws
		}
		// Jitter spreads a reconnect storm over the backoff window.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-d.closing:
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve runs one connection: a writer goroutine and the reader (this
// goroutine), until the connection ends.
func (d *device) serve(ws *websocket.Conn) error {
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		d.writeLoop(ws, stop)
	}()
	defer func() {
		close(stop)
		ws.Close()
		<-writerDone
	}()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("%s: connection lost: %w", d.user, err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: undecodable frame %q", d.user, b)
		}
		if d.take(f) {
			d.events.frame(d.user, f)
		}
	}
}

// take updates the device's own state with a frame; false means the
// device handles it alone (an `unavailable` or `rate_limited` answer it
// will retry).
func (d *device) take(f frame) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch f.Type {
	case "msg":
		if prev := d.positions[f.ConversationID]; prev > 0 && f.Seq != prev+1 {
			d.events.outOfOrder(d.user, f.ConversationID, prev, f.Seq, fmt.Sprintf("#%d to %s (resume %d)", d.dials, d.url, d.resumed[f.ConversationID]))
		}
		d.positions[f.ConversationID] = max(d.positions[f.ConversationID], f.Seq)
	case "reset": // the conversation's stream was rebuilt: it starts again from seq 1
		d.positions[f.ConversationID] = 0
	case "accepted", "rejected":
		if p := d.pending[f.ClientMsgID]; p != nil {
			delete(d.rounds, p.conv)
		}
		delete(d.pending, f.ClientMsgID)
	case "error":
		if p := d.pending[f.Ref]; p != nil && (f.Code == "unavailable" || f.Code == "rate_limited") {
			d.events.refused(f.Code)
			if now := time.Now(); now.Before(d.gate[p.conv]) {
				// An earlier send of its conversation was refused (the gateway
				// refuses the ones behind it too): it goes again with that one,
				// in order, and adds no backoff of its own (counted per send,
				// every send behind a refused one backed off again and again,
				// and resends of one conversation waited on the slowest).
				p.retryAt = d.gate[p.conv]
				return false
			}
			wait := unavailableRetry
			if f.Code == "rate_limited" {
				wait = rateLimitedRetry
			}
			if f.RetryAfterMs > 0 { // the gateway's hint
				wait = time.Duration(f.RetryAfterMs) * time.Millisecond
			}
			// Refused again and again, back off further than the hint (a
			// retry storm past capacity costs the gateway what the load
			// does), and spread by up to half so retries do not come back
			// together.
			d.rounds[p.conv]++
			wait = min(max(wait, unavailableRetry<<min(d.rounds[p.conv]-1, 4)), maxRetryWait)
			wait += rand.N(wait/2 + 1)
			p.retryAt = time.Now().Add(wait)
			d.gate[p.conv] = p.retryAt
			return false
		}
		delete(d.pending, f.Ref)
	}
	return true
}

// writeLoop first writes again the sends a lost connection left
// unanswered, in their original order, then the queued frames, and every
// retryTick the sends whose retry time passed.
func (d *device) writeLoop(ws *websocket.Conn, stop <-chan struct{}) {
	if !d.writeDue(ws, true) {
		return
	}
	tick := time.NewTicker(retryTick)
	defer tick.Stop()
	for {
		select {
		case f := <-d.out:
			if f.cmid != "" {
				d.mu.Lock()
				p := &inflight{conv: f.conv, b: f.b, retryAt: time.Now().Add(notYet)}
				d.pending[f.cmid] = p
				d.order = append(d.order, f.cmid)
				gated := time.Now().Before(d.gate[f.conv])
				if gated { // an earlier send of its conversation waits: go after it
					p.retryAt = d.gate[f.conv]
				}
				d.mu.Unlock()
				if gated {
					continue
				}
			}
			// A failed write leaves the send pending: the next connection
			// writes it.
			if ws.WriteMessage(websocket.TextMessage, f.b) != nil {
				ws.Close()
				return
			}
			if f.cmid != "" {
				d.events.attempted(f.cmid, time.Now())
			}
		case <-tick.C:
			if !d.writeDue(ws, false) {
				return
			}
		case <-stop:
			return
		}
	}
}

// writeDue writes the pending sends whose retry time passed (all of them
// when all is set), oldest first; false if the connection failed.
func (d *device) writeDue(ws *websocket.Conn, all bool) bool {
	now := time.Now()
	d.mu.Lock()
	var due []outFrame
	kept := d.order[:0]
	for _, cmid := range d.order {
		p := d.pending[cmid]
		if p == nil {
			continue // answered
		}
		kept = append(kept, cmid)
		if all || (!now.Before(p.retryAt) && !now.Before(d.gate[p.conv])) {
			due = append(due, outFrame{cmid: cmid, b: p.b})
			p.retryAt = now.Add(notYet)
		}
	}
	d.order = kept
	d.mu.Unlock()
	for _, f := range due {
		if ws.WriteMessage(websocket.TextMessage, f.b) != nil {
			ws.Close()
			return false
		}
		d.events.attempted(f.cmid, time.Now())
	}
	return true
}

// send queues a send frame for the current or next connection (kept until
// answered); false if the device was closed or ctx cancelled first.
func (d *device) send(ctx context.Context, m outMsg) bool {
	v := map[string]any{"type": "send", "conversation_id": m.conv, "client_msg_id": m.cmid, "client_seq": m.clientSeq}
	if m.control != nil {
		v["control"] = m.control
	} else {
		v["message"] = map[string]string{"content_type": "text/plain", "body": m.body}
	}
	b, _ := json.Marshal(v) // maps of strings and numbers always marshal
	select {
	case d.out <- outFrame{cmid: m.cmid, conv: m.conv, b: b}:
		return true
	case <-d.closing:
		return false
	case <-ctx.Done():
		return false
	}
}

func (d *device) isClosing() bool {
	select {
	case <-d.closing:
		return true
	default:
		return false
	}
}

// close ends the device: its connection and any redial (idempotent).
func (d *device) close() {
	d.closeOnce.Do(func() {
		close(d.closing)
		d.mu.Lock()
		ws := d.ws
		d.mu.Unlock()
		if ws != nil {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
				time.Now().Add(time.Second))
			ws.Close()
		}
	})
}
