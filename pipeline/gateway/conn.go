package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/pipeline/auth"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// helloTimeout is how long a new connection has to say hello.
const helloTimeout = 10 * time.Second

// conn is one device's WebSocket connection. The read loop owns the
// socket's reads, the write loop its writes; deliveries from the topic
// consumer and history fills meet in the conversations' reorder buffers
// under mu.
type conn struct {
	g      *Gateway
	ws     *websocket.Conn
	wire   *batchConn // ws's connection, for batched writes
	log    *slog.Logger
	user   string
	device string
	epoch  uint64

	out  chan outFrame // frames to write, bounded
	quit chan struct{} // closed to stop the write loop
	done chan struct{} // closed when the write loop has closed the socket

	expiry     *time.Timer // closes the connection when its token expires
	registered bool        // hello registered it (and announced it online); the reader's own
	userTaken  bool        // hello counted it in its user's connections; the reader's own
	closeOnce  sync.Once
	closeCode  int
	closeText  string
	lastFrame  []byte // a fatal error frame written just before closing

	mu    sync.Mutex
	convs map[string]*convState
	acked map[string]uint64 // acknowledged positions not yet saved
	// inflight are this device's accepted sends whose entry (or notice)
	// has not come back to it yet (admission counts them).
	inflight map[string]struct{}
	// unanswered are the sends read and not answered yet, with the
	// original seq when the sequencer said one is a repeat meanwhile.
	unanswered map[string]uint64
	tokens     float64
	refill     time.Time

	order sendOrder // admitted and settled by the reader, its own
}

// submitted is a send handed to ingest (or refused by it: err) whose
// answer the client is owed.
type submitted struct {
	conv, cmid string
	clientSeq  uint64
	tracked    bool // counted in flight by admission
}

// outFrame is a frame waiting for the write loop; routedAt is set for a
// live entry (the time from it to the write is measured).
type outFrame struct {
	b                    []byte
	routedAt, receivedAt time.Time
}

type convState struct {
	reorder *Reorder
	filling bool
	// live: an entry came from the topic since the connection registered,
	// so the fanout routes this conversation here and any hole before it
	// shows as a gap; the settle pass can skip it.
	live bool
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		http.Error(w, "the gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	g.handlers.Add(1)
	g.mu.Unlock()
	defer g.handlers.Done()
	bw := &batchingWriter{ResponseWriter: w}
	ws, err := g.upgrader.Upgrade(bw, r, nil)
	if err != nil {
		return // the upgrader answered the HTTP error
	}
	c := &conn{g: g, ws: ws, wire: bw.conn, log: g.log, out: make(chan outFrame, g.cfg.OutboundQueue),
		quit: make(chan struct{}), done: make(chan struct{}), convs: map[string]*convState{},
		acked: map[string]uint64{}, inflight: map[string]struct{}{}, unanswered: map[string]uint64{}, tokens: float64(g.cfg.SendBurst), refill: time.Now()}
	go c.writeLoop()
	if reason := g.limits.take(); reason != "" {
		c.refuse(reason, &ProtocolError{Code: CodeUnavailable, RetryAfter: retryAfter(),
			Message: "the gateway is at its " + reason + " limit; reconnect after retry_after_ms, here or to another gateway"},
			websocket.CloseTryAgainLater)
		<-c.done
		return
	}
	defer g.limits.release()
	c.readLoop()
}

// refuse turns a new connection away before hello is read.
func (c *conn) refuse(reason string, e *ProtocolError, code int) {
	c.g.metrics.connectionsRefused.WithLabelValues(reason).Inc()
	c.fail(e, code)
}

// send queues a frame; a client too slow to take its frames is dropped
// rather than allowed to grow the queue (slow_consumer).
func (c *conn) send(frame []byte) { c.enqueue(outFrame{b: frame}) }

// sendEntry queues an entry's frame; c.mu is held.
func (c *conn) sendEntry(e Entry) {
	if e.Sender.user == c.user && e.Sender.device == c.device && e.ClientMsgID != "" {
		c.landed(e.ClientMsgID)
	}
	c.enqueue(outFrame{b: e.Payload, routedAt: e.RoutedAt, receivedAt: e.ReceivedAt})
}

func (c *conn) enqueue(f outFrame) {
	select {
	case c.out <- f:
		c.g.metrics.framesOut.Inc()
	case <-c.quit:
	default:
		c.fail(&ProtocolError{Code: CodeSlowConsumer, Message: "the client reads too slowly"}, websocket.ClosePolicyViolation)
	}
}

// fail closes the connection after a fatal error frame.
func (c *conn) fail(e *ProtocolError, code int) {
	c.g.metrics.disconnects.WithLabelValues(e.Code).Inc()
	c.closeWith(code, e.Code, errorPayload(e, true))
}

func (c *conn) close(code int, text string) { c.closeWith(code, text, nil) }

func (c *conn) closeWith(code int, text string, last []byte) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.lastFrame = code, text, last
		close(c.quit)
	})
}

func (c *conn) writeLoop() {
	defer close(c.done)
	defer c.ws.Close()
	ping := time.NewTicker(c.g.cfg.PingInterval)
	defer ping.Stop()
	write := func(kind int, b []byte) error {
		c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return c.ws.WriteMessage(kind, b)
	}
	for {
		select {
		case f := <-c.out:
			if err := c.writeFrames(f, write); err != nil {
				c.close(websocket.CloseAbnormalClosure, "write failed")
				return
			}
		case <-ping.C:
			if err := write(websocket.PingMessage, nil); err != nil {
				c.close(websocket.CloseAbnormalClosure, "ping failed")
				return
			}
		case <-c.quit:
			if c.lastFrame != nil {
				write(websocket.TextMessage, c.lastFrame)
			}
			write(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText))
			return
		}
	}
}

// writeFrames writes f and every frame queued behind it, in one system
// call, then measures the live entries among them.
func (c *conn) writeFrames(f outFrame, write func(int, []byte) error) error {
	frames := []outFrame{f}
	if n := len(c.out); n > 0 && c.wire != nil {
		c.wire.begin()
		for range n {
			frames = append(frames, <-c.out)
		}
	}
	for _, f := range frames {
		if err := write(websocket.TextMessage, f.b); err != nil {
			return err
		}
		if c.wire != nil && c.wire.full() {
			if err := c.wire.flush(time.Now().Add(10 * time.Second)); err != nil {
				return err
			}
			c.wire.begin()
		}
	}
	if c.wire != nil {
		if err := c.wire.flush(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
	}
	now := time.Now()
	var delays []time.Duration
	for _, f := range frames {
		if !f.routedAt.IsZero() {
			c.g.metrics.writeDelay.Observe(max(now.Sub(f.routedAt), 0).Seconds())
			delays = append(delays, max(now.Sub(f.receivedAt), 0))
		}
	}
	c.g.admit.entries(delays, now)
	return nil
}

func (c *conn) readLoop() {
	defer func() {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.close(websocket.CloseNormalClosure, "")
		<-c.done
		c.mu.Lock()
		c.g.admit.landed(len(c.inflight), time.Now()) // their entries will not be written here
		c.inflight = nil
		c.mu.Unlock()
		if c.userTaken {
			c.g.limits.releaseUser(c.user)
		}
		if c.registered { // a hello that failed announced nothing
			c.g.unregister(c)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.savePositions(ctx)
			c.g.announce(ctx, c, false)
			cancel()
		}
	}()
	c.ws.SetReadDeadline(time.Now().Add(helloTimeout))
	if !c.hello() {
		return
	}
	wait := 2 * c.g.cfg.PingInterval
	c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		b, ok := c.read()
		if !ok {
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(wait))
		f, perr := c.g.decoder.Decode(b)
		if perr != nil {
			c.send(errorPayload(perr, false))
			continue
		}
		switch {
		case f.Hello != nil:
			c.send(errorPayload(&ProtocolError{Code: CodeInvalid, Message: "already said hello"}, false))
		case f.Send != nil:
			c.handleSend(f.Send)
		case f.Ack != nil:
			c.handleAck(f.Ack)
		case f.Sync != nil:
			go c.handleSync(f.Sync)
		case f.Ping != nil:
			c.send(encode(pongFrame{Type: "pong", ID: f.Ping.ID}))
		}
	}
}

// read returns the next text frame; binary frames are answered with
// bad_frame, an oversized one closes the connection. The size is checked
// here, not with the socket's read limit, so that the client gets the
// protocol's error frame before the close.
func (c *conn) read() ([]byte, bool) {
	for {
		kind, r, err := c.ws.NextReader()
		if err != nil {
			return nil, false
		}
		b, err := io.ReadAll(io.LimitReader(r, int64(c.g.cfg.MaxFrameBytes)+1))
		switch {
		case err != nil:
			return nil, false
		case len(b) > c.g.cfg.MaxFrameBytes:
			c.fail(&ProtocolError{Code: CodeFrameTooLarge, Message: fmt.Sprintf("frame over %d bytes", c.g.cfg.MaxFrameBytes)}, websocket.CloseMessageTooBig)
			return nil, false
		case kind != websocket.TextMessage:
			c.send(errorPayload(&ProtocolError{Code: CodeBadFrame, Message: "frames are JSON text"}, false))
			continue
		}
		c.g.metrics.framesIn.Inc()
		return b, true
	}
}

// hello authenticates the first frame and starts the catch-up.
func (c *conn) hello() bool {
	b, ok := c.read()
	if !ok {
		return false
	}
	f, perr := c.g.decoder.Decode(b)
	if perr == nil && f.Hello == nil {
		perr = &ProtocolError{Code: CodeHelloRequired, Message: "the first frame must be hello"}
	}
	if perr != nil {
		if perr.Code != CodeHelloRequired {
			perr = &ProtocolError{Code: CodeHelloRequired, Message: "the first frame must be a valid hello: " + perr.Message}
		}
		c.fail(perr, websocket.ClosePolicyViolation)
		return false
	}
	claims, err := c.g.signer.Verify(f.Hello.Token, time.Now())
	if err != nil {
		code := CodeTokenInvalid
		if errors.Is(err, auth.ErrExpired) {
			code = CodeTokenExpired
		}
		c.fail(&ProtocolError{Code: code, Message: err.Error()}, websocket.ClosePolicyViolation)
		return false
	}
	if !c.g.limits.takeUser(claims.UserID) {
		c.refuse(refusedPerUser, &ProtocolError{Code: CodeTooManyConnections,
			Message: fmt.Sprintf("%s has %d connections to this gateway; close one", claims.UserID, c.g.limits.perUser)},
			websocket.ClosePolicyViolation)
		return false
	}
	c.userTaken = true
	c.user, c.device, c.epoch = claims.UserID, claims.DeviceID, uint64(time.Now().UnixNano())
	// A connection does not outlive its token: the client reconnects with
	// a new one and resumes where it was.
	c.expiry = time.AfterFunc(time.Until(claims.ExpiresAt), func() {
		c.fail(&ProtocolError{Code: CodeTokenExpired, Message: "token expired at " + claims.ExpiresAt.Format(time.RFC3339) +
			"; reconnect with a new token"}, websocket.ClosePolicyViolation)
	})
	c.log = c.log.With("user", c.user, "device", c.device)
	// Welcome before the history read below: a client's dial timeout must
	// not include it (a reconnect storm queues on history). A read that
	// fails is retried, never answered by dropping the connection welcome
	// promised to serve.
	c.send(encode(welcomeFrame{Type: "welcome", UserID: c.user, DeviceID: c.device, GatewayID: c.g.cfg.GatewayID,
		MaxFrameBytes: c.g.cfg.MaxFrameBytes}))
	resume, ok := c.resumeWhenHistoryAnswers(f.Hello.Resume)
	if !ok {
		if !c.closed() {
			c.fail(&ProtocolError{Code: CodeUnavailable, Message: "the gateway is shutting down; reconnect"}, websocket.CloseTryAgainLater)
		}
		return false
	}
	// Registered before the catch-up reads history: a live delivery that
	// arrives meanwhile is held in the reorder buffer, so the seam between
	// history and live has neither a gap nor a duplicate.
	c.mu.Lock()
	for conv, pos := range resume {
		c.convs[conv] = &convState{reorder: NewReorder(pos, 0), filling: true}
	}
	c.mu.Unlock()
	if !c.g.register(c) {
		c.fail(&ProtocolError{Code: CodeUnavailable, Message: "the gateway is shutting down; reconnect"}, websocket.CloseTryAgainLater)
		return false
	}
	c.registered = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.g.announce(ctx, c, true)
	cancel()
	go c.catchUp(resume)
	go c.settle()
	return true
}

// catchUpBatch is how many conversations one catch-up call reads (the
// history API's MaxReadMany).
const catchUpBatch = 64

// catchUp reads the first page of every resumed conversation in a few
// calls instead of one each (a reconnect storm is bound by history's
// queries), then fills each conversation from its page on. A failed call
// is retried as a whole: falling back to one read per conversation would
// multiply the load on a history service that is already behind. A
// conversation the call refused is filled by its own reads, which report
// why.
func (c *conn) catchUp(resume map[string]uint64) {
	first := map[string]HistoryPage{}
	batch := map[string]uint64{}
	flush := func() {
		backoff := 500 * time.Millisecond
		for !c.closed() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			pages, err := c.g.cfg.History.CatchUp(ctx, c.user, batch, historyPage)
			cancel()
			if err == nil {
				for conv, p := range pages {
					first[conv] = p
				}
				break
			}
			c.g.metrics.historyErrors.Inc()
			c.log.Warn("catch-up read failed; retrying", "conversations", len(batch), "err", err)
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		batch = map[string]uint64{}
	}
	for conv, pos := range resume {
		batch[conv] = pos
		if len(batch) == catchUpBatch {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	if c.closed() {
		return
	}
	for conv := range resume {
		var page *HistoryPage
		if p, ok := first[conv]; ok {
			page = &p
		}
		go c.fill(conv, true, page)
	}
}

// settleRounds: the settle pass runs SettleDelay after hello and again
// (settleRounds-1) times, each after a delay 4 times longer than the last:
// one pass relies on history having written within SettleDelay what the
// fanout routed before it knew the device, and a history sink that is
// slow for a moment (a restart, a burst) would leave such an entry, in a
// quiet conversation, undelivered until its next message.
const settleRounds = 2

// settle is the catch-up pass after hello: anything sequenced while the
// fanout did not yet know this device is in history by then, including
// conversations the user joined meanwhile.
func (c *conn) settle() {
	delay := c.g.cfg.SettleDelay
	for range settleRounds {
		if !c.sleep(delay) {
			return
		}
		c.settleOnce()
		delay *= 4
	}
}

func (c *conn) settleOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	cancel()
	if err != nil {
		c.log.Warn("settle pass: listing conversations", "err", err)
		return
	}
	for _, conv := range convs {
		c.mu.Lock()
		cs := c.convs[conv]
		if cs == nil {
			cs = &convState{reorder: NewReorder(0, 0)}
			c.convs[conv] = cs
		}
		if cs.live {
			c.mu.Unlock()
			c.g.metrics.settleSkips.Inc()
			continue
		}
		start := !cs.filling
		cs.filling = true
		c.mu.Unlock()
		if start {
			go c.fill(conv, true, nil)
		}
	}
}

// resumeWhenHistoryAnswers is resumePositions, retried with backoff while
// history fails; false if the connection or the gateway closes first.
func (c *conn) resumeWhenHistoryAnswers(sent map[string]uint64) (map[string]uint64, bool) {
	backoff := 200 * time.Millisecond
	for {
		resume, err := c.resumePositions(sent)
		if err == nil {
			return resume, true
		}
		c.g.metrics.historyErrors.Inc()
		c.log.Warn("reading stored positions failed; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.quit:
			t.Stop()
			return nil, false
		case <-c.g.shutdown:
			t.Stop()
			return nil, false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// resumePositions is where each of the user's conversations resumes: the
// position the device sent in hello, else the one it acknowledged last
// (stored), else 0 (a conversation it never saw, such as a group it was
// added to while offline).
func (c *conn) resumePositions(sent map[string]uint64) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := c.g.cfg.History.Positions(ctx, c.user, c.device)
	if err != nil {
		return nil, err
	}
	convs, err := c.g.cfg.History.Conversations(ctx, c.user)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, conv := range convs {
		out[conv] = stored[conv]
	}
	for conv, pos := range stored {
		out[conv] = pos
	}
	for conv, pos := range sent {
		out[conv] = pos
	}
	return out, nil
}

func (c *conn) handleSend(s *Send) {
	if !c.admitSend(s) {
		return
	}
	in := ingest.Send{ConversationID: s.ConversationID, ClientMsgID: s.ClientMsgID, SenderUserID: c.user,
		SenderDeviceID: c.device, ClientSeq: s.ClientSeq}
	if s.Message != nil {
		in.Message = &imv1.ChatMessage{ContentType: s.Message.ContentType, Body: []byte(s.Message.Body)}
	} else {
		in.Control = controlOf(s.Control)
	}
	// In flight from before the submit: its entry can come back before the
	// broker's acknowledgement does.
	c.mu.Lock()
	_, again := c.inflight[s.ClientMsgID]
	tracked := !again && c.inflight != nil
	if tracked {
		c.inflight[s.ClientMsgID] = struct{}{}
		c.g.admit.accepted(time.Now())
	}
	c.unanswered[s.ClientMsgID] = 0
	c.mu.Unlock()
	// Submitted one after another: the next send of the connection is read
	// only once this one is answered. (Pipelining them, answered in order,
	// broke I2 in make chaos: across a broker restart a send failed while
	// later ones of its conversation were in flight and written, and its
	// resend came after the hold window.)
	sub, err := c.g.ingest.Enqueue(context.Background(), in)
	if err == nil {
		err = sub.Wait(context.Background())
	}
	c.answer(submitted{conv: s.ConversationID, cmid: s.ClientMsgID, clientSeq: s.ClientSeq, tracked: tracked}, err)
}

// admitSend answers a send that may not go to the pipeline now (order,
// rate, overload) and reports whether it may.
func (c *conn) admitSend(s *Send) bool {
	if ok, full := c.order.admit(s.ConversationID, s.ClientSeq); !ok {
		if full {
			c.fail(&ProtocolError{Code: CodeUnavailable, Ref: s.ClientMsgID,
				Message: "too many sends refused in " + s.ConversationID + "; reconnect and resend them in order"}, websocket.CloseTryAgainLater)
			return false
		}
		c.g.metrics.refused.WithLabelValues(refusedOrder).Inc()
		c.send(errorPayload(&ProtocolError{Code: CodeUnavailable, Ref: s.ClientMsgID,
			Message: "an earlier send of this conversation was not accepted; resend it first, then this one"}, false))
		return false
	}
	if ok, wait := c.allowSend(); !ok {
		c.order.failed(s.ConversationID, s.ClientSeq)
		c.g.metrics.refused.WithLabelValues(refusedRateLimited).Inc()
		c.send(errorPayload(&ProtocolError{Code: CodeRateLimited, Message: "too many sends; this one was dropped", Ref: s.ClientMsgID,
			RetryAfter: wait}, false))
		return false
	}
	if ok, behind := c.g.admit.admit(time.Now()); !ok {
		c.order.failed(s.ConversationID, s.ClientSeq)
		c.g.metrics.refused.WithLabelValues(refusedOverload).Inc()
		c.send(errorPayload(&ProtocolError{Code: CodeUnavailable, Ref: s.ClientMsgID, RetryAfter: behind,
			Message: "the pipeline is behind; retry with the same client_msg_id after retry_after_ms"}, false))
		return false
	}
	return true
}

func (c *conn) answer(s submitted, err error) {
	c.mu.Lock()
	seq := c.unanswered[s.cmid] // a repeat's original seq, if known by now
	delete(c.unanswered, s.cmid)
	if err != nil && s.tracked {
		c.landed(s.cmid) // not taken: nothing will come back
	}
	c.mu.Unlock()
	var ierr *ingest.Error
	switch {
	case err == nil:
		c.order.accept(s.conv, s.clientSeq)
		c.send(encode(acceptedFrame{Type: "accepted", ConversationID: s.conv, ClientMsgID: s.cmid, Seq: seq}))
	case errors.As(err, &ierr):
		c.order.accept(s.conv, s.clientSeq) // settled for good: the sends behind it go on
		c.send(encode(rejectedFrame{Type: "rejected", ConversationID: s.conv, ClientMsgID: s.cmid,
			Code: ierr.Code, Message: ierr.Message}))
	default:
		c.order.failed(s.conv, s.clientSeq)
		c.log.Warn("send not accepted", "err", err)
		c.send(errorPayload(&ProtocolError{Code: CodeUnavailable, Message: "not accepted; retry with the same client_msg_id", Ref: s.cmid}, false))
	}
}

func controlOf(c *Control) *imv1.Control {
	switch c.Op {
	case "create_group":
		return &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{Title: c.Title, InitialMembers: c.UserIDs}}}
	case "join":
		return &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: c.UserID}}}
	case "leave":
		return &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}}
	default: // "kick": the decoder admits no other op
		return &imv1.Control{Op: &imv1.Control_Kick{Kick: &imv1.Kick{UserId: c.UserID}}}
	}
}

// allowSend is a token bucket: SendsPerSecond, bursts of SendBurst. When
// it refuses, wait is how long until the next token.
func (c *conn) allowSend() (ok bool, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.tokens = min(float64(c.g.cfg.SendBurst), c.tokens+now.Sub(c.refill).Seconds()*c.g.cfg.SendsPerSecond)
	c.refill = now
	if c.tokens < 1 {
		return false, time.Duration((1 - c.tokens) / c.g.cfg.SendsPerSecond * float64(time.Second))
	}
	c.tokens--
	return true, 0
}

func (c *conn) handleAck(a *Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs := c.convs[a.ConversationID]; cs == nil || a.Seq > cs.reorder.Delivered() {
		c.g.metrics.badAcks.Inc() // acknowledging what was not delivered: ignored
		return
	}
	if a.Seq > c.acked[a.ConversationID] {
		c.acked[a.ConversationID] = a.Seq
	}
}

// savePositions stores the positions acknowledged since the last save, so
// that a reconnect to any gateway resumes after them. A failed save keeps
// them for the next attempt.
func (c *conn) savePositions(ctx context.Context) {
	c.mu.Lock()
	if len(c.acked) == 0 {
		c.mu.Unlock()
		return
	}
	batch := c.acked
	c.acked = map[string]uint64{}
	c.mu.Unlock()
	if err := c.g.cfg.History.SavePositions(ctx, c.user, c.device, batch); err != nil {
		c.log.Warn("saving acknowledged positions", "err", err)
		c.mu.Lock()
		for conv, seq := range batch {
			if seq > c.acked[conv] {
				c.acked[conv] = seq
			}
		}
		c.mu.Unlock()
	}
}

func (c *conn) handleSync(s *Sync) {
	limit := s.Limit
	if limit == 0 {
		limit = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := c.g.cfg.History.Read(ctx, s.ConversationID, c.user, s.AfterSeq, limit)
	if err != nil {
		perr := &ProtocolError{Code: CodeUnavailable, Message: "history did not answer; retry"}
		switch {
		case errors.Is(err, ErrNotMember):
			perr = &ProtocolError{Code: CodeNotMember, Message: c.user + " was never a member"}
		case errors.Is(err, ErrUnknownConversation):
			perr = &ProtocolError{Code: CodeUnknownConversation, Message: "no such conversation"}
		default:
			c.log.Warn("sync", "conversation_id", s.ConversationID, "err", err)
		}
		perr.Message = "sync " + s.ConversationID + ": " + perr.Message
		c.send(errorPayload(perr, false))
		return
	}
	up := s.AfterSeq
	for _, e := range page.Entries {
		c.send(encode(e))
		up = e.Seq
	}
	c.send(encode(syncedFrame{Type: "synced", ConversationID: s.ConversationID, UpToSeq: up,
		Complete: up >= page.CompleteUpTo && len(page.Entries) < limit}))
}
