package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// helloTimeout is how long a new connection has to say hello.
const helloTimeout = 10 * time.Second

// conn is one device's WebSocket connection. The read loop owns the
// socket's reads; a writer goroutine runs only while frames are queued (an
// idle connection holds one goroutine and no queue: issue 16's memory per
// connection). Deliveries from the topic consumer and history fills meet
// in the conversations' reorder buffers under mu.
//
// This file holds its lifecycle (accept, refuse, close, end); outbound.go
// its writes, inbound.go its reads; the frames' concerns have files of
// their own: hello.go (hello and auth), resume.go and settle.go (catch-up),
// sends.go and limits.go (sends and rate limits), positions.go (acks and
// positions), sync.go, reads.go (read receipts).
type conn struct {
	g      *Gateway
	ws     *websocket.Conn
	wire   *batchConn // ws's connection, for batched writes
	log    *slog.Logger
	user   string
	device string
	epoch  uint64

	quit chan struct{} // closed when the connection closes
	done chan struct{} // closed when the writer has closed the socket

	wmu     sync.Mutex
	queue   []outFrame  // frames to write, at most OutboundQueue
	writing bool        // a writer runs (for good once the connection closes)
	dropped bool        // a frame did not fit: nothing after it is queued
	ping    *time.Timer // the next WebSocket ping

	expiry     *time.Timer    // closes the connection when its token expires
	registered bool           // hello registered it (and announced it online); the reader's own
	userTaken  bool           // hello counted it in its user's connections; the reader's own
	announcing sync.WaitGroup // a retry of the online announcement (hello's failed)
	closeOnce  sync.Once
	closeCode  int
	closeText  string
	lastFrame  []byte // a fatal error frame written just before closing

	mu    sync.Mutex
	convs map[string]*convState
	acked map[string]uint64 // acknowledged positions not yet saved
	// unanswered are the sends read and not answered yet, with the
	// original seq when the sequencer said one is a repeat meanwhile.
	unanswered map[string]uint64
	tokens     float64
	refill     time.Time

	// Sends read and not yet submitted. A sender goroutine runs only while
	// there are any and submits them one after another (sends.go); the
	// read loop only queues them, so it goes on reading pings and acks
	// while a send waits for the broker.
	smu      sync.Mutex
	sendRoom sync.Cond // signalled as the queue shrinks (L: smu)
	pending  []*Send
	sending  bool           // a sender runs
	sender   sync.WaitGroup // the sender, waited for by end

	order sendOrder // admitted and settled by the sender, its own

	routing routing // what the fanout said about routing here (under mu)
	// placing: resume has not placed the device in its conversations yet
	// (a conversation first named by a live entry starts unplaced);
	// headsMode: it placed them from the fanout's notices (under mu).
	placing, headsMode bool
	// resumeEpochs: the epoch of each resume position, from hello or the
	// stored positions (under mu).
	resumeEpochs map[string]uint64
}

type convState struct {
	reorder *Reorder
	filling bool
	// settleAgain: a settle pass came while a fill ran, which may have read
	// history before what the pass is for was stored; it reads once more.
	settleAgain bool
	// live: an entry came from the topic since the connection registered,
	// so the fanout routes this conversation here and any hole before it
	// shows as a gap; the settle pass can skip it.
	live bool
	// unplaced: hello has not said yet where the device is in it; live
	// entries wait in early (at most maxEarly) until resume places it.
	unplaced bool
	early    []Entry
	// target: the fanout routed up to here before it routed to this
	// connection; fill reads history until the device has it.
	target uint64
	// memberFrom > 0: the user may see every seq from there to target, so
	// reads up to target are shared with the other members (sharedReads).
	memberFrom uint64
	// left: the device got the user's own leave or kick, so it falls
	// behind the conversation's head by design (no stall).
	left bool
	// behind: the head the device has been behind since it was learned
	// (stall detection); zero while it is not behind.
	behind headSeen
	// epoch of the conversation's stream the device holds (epoch.go);
	// epochKnown false: not known yet (a resume position without one),
	// the first epoch seen is taken as the device's.
	// epochClaimed: epoch is only what the device resumed at, not seen in
	// any record yet.
	epoch                    uint64
	epochKnown, epochClaimed bool
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
	bw := &batchingWriter{ResponseWriter: w, bufs: &g.batches}
	ws, err := g.upgrader.Upgrade(bw, r, nil)
	if err != nil {
		g.handlers.Done()
		return // the upgrader answered the HTTP error
	}
	c := &conn{g: g, ws: ws, wire: bw.conn, log: g.log,
		quit: make(chan struct{}), done: make(chan struct{}), convs: map[string]*convState{},
		acked: map[string]uint64{}, unanswered: map[string]uint64{}, tokens: float64(g.cfg.SendBurst), refill: time.Now(),
		routing: newRouting()}
	c.sendRoom.L = &c.smu
	c.wmu.Lock()
	c.ping = time.AfterFunc(g.cfg.PingInterval, c.pingNow)
	c.wmu.Unlock()
	if reason := g.limits.take(); reason != "" {
		c.refuse(reason, &ProtocolError{Code: CodeUnavailable, RetryAfter: retryAfter(),
			Message: "the gateway is at its " + reason + " limit; reconnect after retry_after_ms, here or to another gateway"},
			websocket.CloseTryAgainLater)
		<-c.done
		g.handlers.Done()
		return
	}
	c.ws.SetReadDeadline(time.Now().Add(helloTimeout))
	if !c.hello() {
		c.end()
		return
	}
	// The handler returns here, so net/http frees what it holds per
	// request (a 4 KiB reader and writer, the request); the connection
	// lives on in a read loop whose stack holds only the loop.
	go func() {
		defer c.end()
		c.readLoop()
	}()
}

// refuse turns a new connection away before hello is read.
func (c *conn) refuse(reason string, e *ProtocolError, code int) {
	c.g.metrics.connectionsRefused.WithLabelValues(reason).Inc()
	c.fail(e, code)
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
		c.wmu.Lock()
		c.startWriter() // the close is written by a writer too
		c.wmu.Unlock()
	})
}

// end closes the connection, waits for its writer, and undoes what hello
// and serveWS took: the user's and the gateway's connection counts, the
// registration, with the device's positions saved and its offline
// announced.
func (c *conn) end() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.close(websocket.CloseNormalClosure, "")
	<-c.done
	c.sender.Wait() // the send in flight answered (or dropped); none start now
	if c.userTaken {
		c.g.limits.releaseUser(c.user)
	}
	if c.registered { // a hello that failed announced nothing
		c.g.unregister(c)
		c.announcing.Wait() // offline after online, never before
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.savePositions(ctx)
		c.g.announce(ctx, c, false)
		cancel()
	}
	c.g.limits.release()
	c.g.handlers.Done()
}
