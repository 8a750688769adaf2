package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/seqchat/seqchat/tools/centrifugo"
)

// cfChannel is the Centrifugo channel of conversation conv: its id with
// ':' (Centrifugo's namespace separator) replaced by '_', which ids never
// contain (idPattern), so that channels are unique per conversation.
func cfChannel(conv string) string { return strings.ReplaceAll(conv, ":", "_") }

// cfPayload is the publication data of a load send.
type cfPayload struct {
	ClientMsgID string `json:"client_msg_id"`
	ClientSeq   uint64 `json:"client_seq"`
	Sender      string `json:"sender"`
	Body        string `json:"body"`
}

// cfConn is one user's connection to Centrifugo: a centrifugo.Client that
// subscribes during setup to the channel of every conversation the user
// belongs to (Centrifugo has no membership: subscribing replaces group
// creation). A send is an async publish whose reply is the answer
// (accepted, or an error with code "centrifugo_<code>"); a publication is
// a msg with seq = its offset, which starts at 1 in a fresh channel and is
// contiguous. It does not reconnect: a lost connection is reported once,
// its unanswered sends stay unanswered and what it would have received
// shows as lost.
type cfConn struct {
	user     string
	url      string
	token    string
	channels map[string]string // channel -> conversation; read-only
	events   connEvents

	closing   chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	client *centrifugo.Client // nil before connect
}

func newCFConn(user, url, token string, convs []string, events connEvents) *cfConn {
	c := &cfConn{user: user, url: url, token: token, channels: make(map[string]string, len(convs)), events: events,
		closing: make(chan struct{})}
	for _, cv := range convs {
		c.channels[cfChannel(cv)] = cv
	}
	return c
}

// cfQueue is how many publications wait for one Centrifugo connection's
// writer; when it fills, the scheduler blocks on that device (latency is
// still measured from each send's intended time, so the stall shows).
const cfQueue = 4096

// connect dials and subscribes to every channel of the user, each of
// which must be fresh (no publication yet).
func (c *cfConn) connect(ctx context.Context) error {
	cl, err := centrifugo.Dial(ctx, c.url, centrifugo.Options{Token: c.token, Name: "seqchat-loadgen",
		OnPublication: c.publication, OnUnsubscribe: c.unsubscribed, QueueSize: cfQueue})
	if err != nil {
		return fmt.Errorf("%s: %w", c.user, err)
	}
	c.mu.Lock()
	c.client = cl
	c.mu.Unlock()
	for ch := range c.channels {
		res, err := cl.Subscribe(ctx, ch)
		if err != nil {
			return fmt.Errorf("%s: %w", c.user, err)
		}
		if res.Offset != 0 {
			return fmt.Errorf("channel %s holds %d publications already (does the run id exist already?)", ch, res.Offset)
		}
	}
	return nil
}

// run waits until close, or reports the connection's loss.
func (c *cfConn) run() {
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	select {
	case <-c.closing:
		return
	case <-cl.Done():
	}
	select {
	case <-c.closing: // close came first: the client stopped because of it
	default:
		c.events.disconnected(c.user, cl.Err())
	}
}

// send publishes m to its conversation's channel, blocking while the
// client's queue is full (until the client stops; ctx is not consulted).
func (c *cfConn) send(_ context.Context, m outMsg) bool {
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	if cl == nil || m.control != nil { // no control operations in Centrifugo
		return false
	}
	data, _ := json.Marshal(cfPayload{ClientMsgID: m.cmid, ClientSeq: m.clientSeq, Sender: c.user, Body: m.body})
	return cl.Publish(cfChannel(m.conv), data, func(err error) { c.answered(m.cmid, err) }) == nil
}

// answered turns a publish reply into an accepted or error frame. A
// publish the connection's end failed got no reply: it stays unanswered,
// as a seqchat send does when its connection is lost.
func (c *cfConn) answered(cmid string, err error) {
	var e *centrifugo.Error
	switch {
	case err == nil:
		c.events.frame(c.user, frame{Type: "accepted", ClientMsgID: cmid})
	case errors.As(err, &e):
		c.events.frame(c.user, frame{Type: "error", Ref: cmid, Code: "centrifugo_" + strconv.FormatUint(uint64(e.Code), 10),
			Message: json.RawMessage(strconv.Quote(e.Message))})
	}
}

func (c *cfConn) publication(channel string, offset uint64, data json.RawMessage) {
	conv, ok := c.channels[channel]
	if !ok {
		return
	}
	var p cfPayload
	_ = json.Unmarshal(data, &p) // not ours: no client_msg_id, and the verifier still checks the offset
	c.events.frame(c.user, frame{Type: "msg", ConversationID: conv, Seq: offset, ClientMsgID: p.ClientMsgID})
}

// unsubscribed: the server dropped a subscription (for example 2500
// "insufficient state"). Nothing more arrives on that channel, so it is
// reported as a lost connection; the other subscriptions go on.
func (c *cfConn) unsubscribed(channel string, code uint32, reason string) {
	c.events.disconnected(c.user, fmt.Errorf("server unsubscribed %s from %s: %d %s", c.user, channel, code, reason))
}

// close closes the client (idempotent).
func (c *cfConn) close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		cl := c.client
		c.mu.Unlock()
		if cl != nil {
			cl.Close()
		}
	})
}
