package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Config says where and who to connect as, and how patiently.
type Config struct {
	// URLs of gateways (ws://host:port/ws), tried in turn on reconnects.
	URLs []string
	// Token is the device token (imctl token issues one for development).
	Token string
	// Resume: the last seq the device holds of each conversation, from an
	// earlier run; the first hello resumes after them (conversations not
	// named resume from the gateway's stored positions). Epochs: the
	// epochs of those positions, where known (a position of another epoch
	// than the stream's is answered with reset).
	Resume map[string]uint64
	Epochs map[string]uint64
	// AckDelay batches acknowledgements: one cumulative ack per
	// conversation this often. Zero means 200ms; negative, never ack (the
	// gateway then keeps no position for the device).
	AckDelay time.Duration
	// GapWait is how long an entry past a hole waits before a sync fills
	// the hole from history. Zero means 500ms.
	GapWait time.Duration
	// DialTimeout bounds a dial and its hello/welcome. Zero means 10s.
	DialTimeout time.Duration
	// MaxBackoff caps the wait between reconnect attempts. Zero means 2s.
	MaxBackoff time.Duration
	// MaxRetryWait caps the wait of a send refused again and again. Zero
	// means 5s.
	MaxRetryWait time.Duration
	// KeepAlive: a connection that brought nothing for this long is
	// pinged (a WebSocket ping), and one that brings nothing, not even the
	// pong, for twice as long is dropped and the client reconnects to the
	// next gateway. A gateway cut off by the network drops packets rather
	// than closing connections: without this its devices would wait for
	// TCP to give up (many minutes). Zero means 5s; negative, never.
	KeepAlive time.Duration
	// Events are called from the client's goroutines, one at a time per
	// connection; they must not block for long and may call Send.
	Events Events
}

// Events are the application's callbacks; each may be nil.
type Events struct {
	// Entry: each entry of a conversation once, in seq order.
	Entry func(Entry)
	// Arrived: each entry as it arrived, before reordering (what the
	// gateway sent, for tools that check the gateway's own order).
	Arrived func(Entry)
	// Answer: the gateway's answer to a send it read (accepted, rejected,
	// or a non-retryable error). Refusals the outbox retries come to
	// Refused instead.
	Answer func(Answer)
	// Settled: a send ended (Settlement.Kind sequenced, rejected or
	// error). A send can settle without an Answer on this client: its
	// accepted answer was lost with a connection and its own entry came.
	Settled func(Settlement)
	// Refused: a send was refused for now (unavailable, rate_limited) and
	// will be written again.
	Refused func(clientMsgID, code string, retryAfter time.Duration)
	// Written: a send was written to a connection (first time or again).
	Written func(clientMsgID string, at time.Time)
	// Connected: a welcome came; down is how long the device was
	// without a connection (zero for the first).
	Connected func(url string, down time.Duration)
	// Disconnected: the connection was lost; the client reconnects.
	Disconnected func(err error)
	// Error: an error frame about no send (a refused sync, a bad frame).
	Error func(code, message string)
	// Receipt: user has read the conversation up to seq (another member, or
	// this user on another device).
	Receipt func(conv, user string, seq uint64)
	// Reset: the conversation's stream was rebuilt under a new epoch; what
	// the application holds of it is of the old one. Its entries come again
	// from seq 1.
	Reset func(conv string, epoch uint64)
}

// Answer is a gateway's answer to a send: Kind is accepted (Seq set when
// the gateway knew it), rejected (Code, Message) or error (Code, Message).
type Answer struct {
	Kind         string
	Conversation string
	ClientMsgID  string
	Seq          uint64
	Code         string
	Message      string
}

// Settlement is how a send ended: Kind sequenced (Seq), rejected or error
// (Code, Message).
type Settlement struct {
	Kind         string
	Conversation string
	ClientMsgID  string
	Seq          uint64
	Code         string
	Message      string
}

// Send is one send. Exactly one of Message, Control and Revision (an edit
// has Revision and Message).
type Send struct {
	Conversation string
	// ClientMsgID makes a retry safe; empty means a random one.
	ClientMsgID string
	// ClientSeq orders the device's sends of the conversation; zero means
	// the next after the last one this client used there.
	ClientSeq uint64
	Message   *Message
	Control   *Control
	Revision  *Revision
}

const (
	// syncTimeout: a sync unanswered this long is asked again.
	syncTimeout = 15 * time.Second
	// maxSync bounds one sync's page.
	maxSync = 1000
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("client closed")

// Client is one device's connection to the gateways.
type Client struct {
	cfg     Config
	wake    chan struct{}
	closing chan struct{}
	once    sync.Once

	mu         sync.Mutex
	ws         *websocket.Conn
	url        string
	next       int // the URL to dial next
	user       string
	device     string
	convs      map[string]*reorder
	epochs     map[string]uint64 // the stream epoch of each conversation's entries
	member     map[string]bool   // false after the user's own leave or kick
	gapAt      map[string]time.Time
	sync       *syncRequest
	acks       map[string]uint64
	ackAt      time.Time
	reads      map[string]uint64 // read marks to write: the highest per conversation
	out        *outbox
	clientSeqs map[string]uint64
	fresh      bool // the connection's unsettled sends are still to be written
}

type syncRequest struct {
	conv  string
	after uint64
	at    time.Time
}

// New checks cfg and returns a client; Connect (or Run) starts it.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("client: no gateway URL")
	}
	if cfg.Token == "" {
		return nil, errors.New("client: no token")
	}
	if cfg.AckDelay == 0 {
		cfg.AckDelay = 200 * time.Millisecond
	}
	if cfg.GapWait == 0 {
		cfg.GapWait = 500 * time.Millisecond
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = 5 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	c := &Client{cfg: cfg, wake: make(chan struct{}, 1), closing: make(chan struct{}),
		convs: map[string]*reorder{}, epochs: map[string]uint64{}, member: map[string]bool{}, gapAt: map[string]time.Time{}, acks: map[string]uint64{}, reads: map[string]uint64{},
		out: newOutbox(cfg.MaxRetryWait), clientSeqs: map[string]uint64{}}
	for conv, seq := range cfg.Resume {
		c.convs[conv] = newReorder(seq)
		if e := cfg.Epochs[conv]; e > 0 {
			c.epochs[conv] = e
		}
	}
	return c, nil
}

// Connect dials the gateways in turn until one welcomes the device (or ctx
// ends). Run then serves the connection.
func (c *Client) Connect(ctx context.Context) error {
	ws, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ws = ws
	c.mu.Unlock()
	c.connected(0)
	return nil
}

// Run serves connections until Close: when one is lost it reconnects with
// backoff and jitter, resumes after what was delivered and writes every
// unsettled send again. It dials first if Connect was not called.
func (c *Client) Run() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		if ws = c.redial(); ws == nil {
			return
		}
		c.connected(0)
	}
	for {
		err := c.serve(ws)
		if c.isClosing() {
			return
		}
		if f := c.cfg.Events.Disconnected; f != nil {
			f(err)
		}
		lost := time.Now()
		if ws = c.redial(); ws == nil {
			return
		}
		c.connected(time.Since(lost))
	}
}

func (c *Client) connected(down time.Duration) {
	if f := c.cfg.Events.Connected; f != nil {
		f(c.currentURL(), down)
	}
}

// Close ends the connection and stops reconnecting (idempotent). Pending
// sends are dropped: a client that must keep them makes them again, with
// the same ids, in its next run.
func (c *Client) Close() {
	c.once.Do(func() {
		close(c.closing)
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			ws.Close()
		}
	})
}

// Send queues a send for the current (or next) connection and returns its
// client_msg_id and client_seq. It stays in the outbox, written again
// after refusals and reconnects, until its entry comes back, the gateway
// names its seq, or it is rejected.
func (c *Client) Send(s Send) (clientMsgID string, clientSeq uint64, err error) {
	if c.isClosing() {
		return "", 0, ErrClosed
	}
	if s.ClientMsgID == "" {
		s.ClientMsgID = fmt.Sprintf("c-%016x%016x", rand.Uint64(), rand.Uint64())
	}
	c.mu.Lock()
	if s.ClientSeq == 0 {
		s.ClientSeq = c.clientSeqs[s.Conversation] + 1
	}
	c.clientSeqs[s.Conversation] = max(c.clientSeqs[s.Conversation], s.ClientSeq)
	b, err := json.Marshal(sendFrame{Type: "send", ConversationID: s.Conversation, ClientMsgID: s.ClientMsgID, ClientSeq: s.ClientSeq,
		Message: s.Message, Control: s.Control, Revision: s.Revision})
	if err == nil {
		c.out.add(&pending{conv: s.Conversation, cmid: s.ClientMsgID, clientSeq: s.ClientSeq, frame: b}, time.Now())
	}
	c.mu.Unlock()
	if err != nil {
		return "", 0, fmt.Errorf("encode send: %w", err)
	}
	c.poke()
	return s.ClientMsgID, s.ClientSeq, nil
}

// MarkRead marks the conversation read up to seq by this user (its
// devices share one position; a lower mark changes nothing). Nothing
// answers it; the user's other devices and the other members get a
// receipt. Marks made while disconnected go on the next connection.
// Seq 0 (nothing read) is no mark: it never goes out.
func (c *Client) MarkRead(conv string, seq uint64) {
	if seq == 0 {
		return
	}
	c.mu.Lock()
	c.reads[conv] = max(c.reads[conv], seq)
	c.mu.Unlock()
	c.poke()
}

// Delivered is the last seq of the conversation handed to Events.Entry.
func (c *Client) Delivered(conv string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.convs[conv]; r != nil {
		return r.delivered
	}
	return 0
}

// Pending is the number of unsettled sends.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.len()
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

func (c *Client) currentURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url
}

// dial connects to the next gateway, says hello with the resume points
// and waits for welcome.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	c.mu.Lock()
	url := c.cfg.URLs[c.next]
	c.next = (c.next + 1) % len(c.cfg.URLs)
	hello := map[string]any{"type": "hello", "token": c.cfg.Token}
	if len(c.convs) > 0 {
		resume := make(map[string]any, len(c.convs))
		for conv, r := range c.convs {
			resume[conv] = r.delivered
			if e := c.epochs[conv]; e > 0 {
				resume[conv] = map[string]uint64{"seq": r.delivered, "epoch": e}
			}
		}
		hello["resume"] = resume
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	dl, _ := ctx.Deadline()
	ws.SetWriteDeadline(dl)
	ws.SetReadDeadline(dl)
	var f serverFrame
	if err := ws.WriteJSON(hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello to %s: %w", url, err)
	}
	_, b, err := ws.ReadMessage()
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil || f.Type != "welcome" {
		ws.Close()
		if err == nil {
			err = fmt.Errorf("%s: %s", f.Code, f.text())
		}
		return nil, fmt.Errorf("welcome from %s: %w", url, err)
	}
	ws.SetWriteDeadline(time.Time{})
	ws.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.url, c.user, c.device, c.fresh = url, f.UserID, f.DeviceID, true
	c.sync = nil // the old connection's sync is not answered here
	c.mu.Unlock()
	return ws, nil
}

// redial dials until a connection is up (nil if Close came first).
func (c *Client) redial() *websocket.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 50 * time.Millisecond
	for {
		ws, err := c.dial(ctx)
		if err == nil {
			c.mu.Lock()
			c.ws = ws
			c.mu.Unlock()
			if c.isClosing() { // Close ran between the dial and the store
				ws.Close()
				return nil
			}
			return ws
		}
		// Jitter spreads a reconnect storm over the backoff window.
		select {
		case <-c.closing:
			return nil
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// serve runs one connection: a writer goroutine and the reader (this
// goroutine), until the connection ends.
func (c *Client) serve(ws *websocket.Conn) error {
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ws, stop)
	}()
	defer func() {
		close(stop)
		ws.Close()
		<-writerDone
	}()
	alive := func() {}
	if k := c.cfg.KeepAlive; k > 0 {
		var last atomic.Int64 // unix nanoseconds of the last frame or pong read
		alive = func() {
			now := time.Now()
			last.Store(now.UnixNano())
			ws.SetReadDeadline(now.Add(2 * k))
		}
		ws.SetPongHandler(func(string) error { alive(); return nil })
		go func() {
			tick := time.NewTicker(k / 2)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case now := <-tick.C:
					if now.Sub(time.Unix(0, last.Load())) >= k {
						ws.WriteControl(websocket.PingMessage, nil, now.Add(k))
					}
				}
			}
		}()
	}
	for {
		alive()
		_, b, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("connection to %s lost: %w", c.currentURL(), err)
		}
		var f serverFrame
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("undecodable frame from %s: %q", c.currentURL(), b)
		}
		calls, schedule := c.take(&f)
		for _, call := range calls {
			call()
		}
		if schedule {
			c.poke() // acks, a hole, a refusal or a sync's end: the writer's next wake moved
		}
	}
}

// take applies a frame to the client's state and returns the callbacks
// it makes, to be called without the lock, and whether the writer has
// something new to schedule.
func (c *Client) take(f *serverFrame) (calls []func(), schedule bool) {
	ev := c.cfg.Events
	emit := func(fn func()) { calls = append(calls, fn) }
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	gaps, acks := len(c.gapAt), len(c.acks)
	defer func() {
		schedule = schedule || len(c.gapAt) != gaps || (acks == 0 && len(c.acks) > 0 && c.cfg.AckDelay > 0)
	}()
	switch f.Type {
	case "msg":
		e := f.entry()
		if ev.Arrived != nil {
			emit(func() { ev.Arrived(e) })
		}
		if e.Sender == c.user && e.SenderDevice == c.device && e.ClientMsgID != "" && c.out.settle(e.ClientMsgID) {
			c.settled(Settlement{Kind: "sequenced", Conversation: e.Conversation, ClientMsgID: e.ClientMsgID, Seq: e.Seq}, emit)
		}
		if known, ok := c.epochs[e.Conversation]; ok && e.Epoch < known {
			break // of a stream the conversation left behind
		} else if ok && e.Epoch > known {
			c.reset(e.Conversation, e.Epoch, emit)
		}
		c.epochs[e.Conversation] = e.Epoch
		r := c.convs[e.Conversation]
		if r == nil {
			r = newReorder(0)
			c.convs[e.Conversation] = r
		}
		start := e.Event != nil && (e.Event.Kind == "created" || e.Event.Kind == "joined") && contains(e.Event.UserIDs, c.user) && !c.member[e.Conversation]
		c.delivered(e.Conversation, r, r.add(e, start), emit, now)
	case "synced":
		if s := c.sync; s != nil && s.conv == f.ConversationID {
			c.sync, schedule = nil, true
		}
		if r := c.convs[f.ConversationID]; r != nil {
			// Everything up to up_to_seq that the user may see came before
			// this frame: what is still missing there is not the user's.
			c.delivered(f.ConversationID, r, r.skipTo(f.UpToSeq), emit, now)
		}
	case "reset":
		c.reset(f.ConversationID, f.Epoch, emit)
		c.epochs[f.ConversationID] = f.Epoch
	case "receipt":
		if ev.Receipt != nil {
			conv, user, seq := f.ConversationID, f.UserID, f.Seq
			emit(func() { ev.Receipt(conv, user, seq) })
		}
	case "accepted":
		if f.Seq > 0 {
			c.out.answered(f.ClientMsgID)
			if c.out.settle(f.ClientMsgID) {
				c.settled(Settlement{Kind: "sequenced", Conversation: f.ConversationID, ClientMsgID: f.ClientMsgID, Seq: f.Seq}, emit)
			}
		} else {
			c.out.accepted(f.ClientMsgID)
		}
		if ev.Answer != nil {
			a := Answer{Kind: "accepted", Conversation: f.ConversationID, ClientMsgID: f.ClientMsgID, Seq: f.Seq}
			emit(func() { ev.Answer(a) })
		}
	case "rejected":
		c.out.answered(f.ClientMsgID)
		if c.out.settle(f.ClientMsgID) {
			c.settled(Settlement{Kind: "rejected", Conversation: f.ConversationID, ClientMsgID: f.ClientMsgID, Code: f.Code, Message: f.text()}, emit)
		}
		if ev.Answer != nil {
			a := Answer{Kind: "rejected", Conversation: f.ConversationID, ClientMsgID: f.ClientMsgID, Code: f.Code, Message: f.text()}
			emit(func() { ev.Answer(a) })
		}
	case "error":
		hint := time.Duration(f.RetryAfterMs) * time.Millisecond
		switch {
		case f.Ref != "" && (f.Code == "unavailable" || f.Code == "rate_limited"):
			// A send that settled while the connection owed it an answer is
			// written again all the same (outbox.lingering), silently.
			if c.out.refused(f.Ref, f.Code, hint, now) && c.out.pending(f.Ref) {
				schedule = true
				if ev.Refused != nil {
					ref, code := f.Ref, f.Code
					emit(func() { ev.Refused(ref, code, hint) })
				}
			}
		case f.Ref != "" && c.out.pending(f.Ref):
			c.out.answered(f.Ref)
			c.out.settle(f.Ref)
			c.settled(Settlement{Kind: "error", Conversation: f.ConversationID, ClientMsgID: f.Ref, Code: f.Code, Message: f.text()}, emit)
			if ev.Answer != nil {
				a := Answer{Kind: "error", Conversation: f.ConversationID, ClientMsgID: f.Ref, Code: f.Code, Message: f.text()}
				emit(func() { ev.Answer(a) })
			}
		default:
			if s := c.sync; s != nil && strings.HasPrefix(f.text(), "sync "+s.conv+":") {
				c.sync, schedule = nil, true // refused: the gap is asked for again after GapWait
				c.gapAt[s.conv] = now.Add(c.cfg.GapWait)
			}
			if ev.Error != nil {
				code, text := f.Code, f.text()
				emit(func() { ev.Error(code, text) })
			}
		}
	}
	return calls, schedule
}

func (c *Client) settled(s Settlement, emit func(func())) {
	if f := c.cfg.Events.Settled; f != nil {
		emit(func() { f(s) })
	}
}

// reset forgets what the client holds of a conversation whose stream was
// rebuilt under a new epoch: it starts again from seq 1.
func (c *Client) reset(conv string, epoch uint64, emit func(func())) {
	c.convs[conv] = newReorder(0)
	delete(c.member, conv)
	delete(c.gapAt, conv)
	delete(c.acks, conv)
	if s := c.sync; s != nil && s.conv == conv {
		c.sync = nil
	}
	if f := c.cfg.Events.Reset; f != nil {
		emit(func() { f(conv, epoch) })
	}
}

// delivered hands a conversation's entries on, notes the user's
// membership and what to ack, and watches the conversation's next hole.
func (c *Client) delivered(conv string, r *reorder, entries []Entry, emit func(func()), now time.Time) {
	for _, e := range entries {
		if e.Event != nil && contains(e.Event.UserIDs, c.user) {
			c.member[conv] = e.Event.Kind == "created" || e.Event.Kind == "joined"
		}
		if f := c.cfg.Events.Entry; f != nil {
			emit(func() { f(e) })
		}
		c.acks[conv] = e.Seq
	}
	_, _, held := r.gap()
	switch {
	case !held:
		delete(c.gapAt, conv)
	case len(entries) > 0:
		c.gapAt[conv] = now.Add(c.cfg.GapWait) // it moved: a new hole waits afresh
	default:
		if _, waiting := c.gapAt[conv]; !waiting {
			c.gapAt[conv] = now.Add(c.cfg.GapWait)
		}
	}
}

// writeLoop writes what is due: every unsettled send on a new connection,
// then new sends as they come, refused ones when their time comes, syncs
// for holes that stayed open, and acks. It sleeps until the next of these
// (or a poke: a new send, or the reader noting something).
func (c *Client) writeLoop(ws *websocket.Conn, stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, ok := c.writeDue(ws)
		if !ok {
			ws.Close()
			return
		}
		timer.Stop()
		var wait <-chan time.Time
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
			wait = timer.C
		}
		select {
		case <-c.wake:
		case <-wait:
		case <-stop:
			return
		}
	}
}

// writeDue writes what is due now and says when something is due next
// (zero: nothing waits on time); false if the connection failed (what was
// not written stays in the outbox for the next connection).
func (c *Client) writeDue(ws *websocket.Conn) (time.Time, bool) {
	now := time.Now()
	c.mu.Lock()
	sends := c.out.due(now, c.fresh)
	c.fresh = false
	var frames [][]byte
	if c.sync != nil && now.Sub(c.sync.at) > syncTimeout {
		c.sync = nil
	}
	next := c.out.next()
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for conv, at := range c.gapAt {
		if c.sync != nil || now.Before(at) {
			soonest(at)
			continue
		}
		after, limit, held := c.convs[conv].gap()
		if !held {
			delete(c.gapAt, conv)
			continue
		}
		c.sync = &syncRequest{conv: conv, after: after, at: now}
		b, _ := json.Marshal(map[string]any{"type": "sync", "conversation_id": conv, "after_seq": after, "limit": min(limit, maxSync)})
		frames = append(frames, b)
		c.gapAt[conv] = now.Add(syncTimeout) // asked; again only if this goes unanswered
		soonest(c.gapAt[conv])
	}
	switch {
	case c.cfg.AckDelay < 0:
		clear(c.acks)
	case len(c.acks) > 0 && now.Before(c.ackAt):
		soonest(c.ackAt)
	case len(c.acks) > 0:
		for conv, seq := range c.acks {
			b, _ := json.Marshal(map[string]any{"type": "ack", "conversation_id": conv, "seq": seq})
			frames = append(frames, b)
		}
		clear(c.acks)
		c.ackAt = now.Add(c.cfg.AckDelay)
	}
	for conv, seq := range c.reads {
		b, _ := json.Marshal(map[string]any{"type": "read", "conversation_id": conv, "seq": seq})
		frames = append(frames, b)
	}
	clear(c.reads)
	c.mu.Unlock()
	for _, p := range sends {
		if ws.WriteMessage(websocket.TextMessage, p.frame) != nil {
			return next, false
		}
		if f := c.cfg.Events.Written; f != nil {
			f(p.cmid, time.Now())
		}
	}
	for _, b := range frames {
		if ws.WriteMessage(websocket.TextMessage, b) != nil {
			return next, false
		}
	}
	return next, true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
