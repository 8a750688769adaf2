package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// submitted is a send handed to ingest (or refused by it: err) whose
// answer the client is owed.
type submitted struct {
	conv, cmid string
	clientSeq  uint64
	start      time.Time // handed to ingest
}

// maxPendingSends bounds the sends a connection has read and not yet
// submitted; past it the read loop waits for room (and TCP pushes back on
// the client), as it waited for each send before.
const maxPendingSends = 64

// queueSend hands a send to the connection's sender. The read loop does
// not wait for the send's answer: while a send waited for the broker
// (through a broker restart, up to the write timeout) the loop read nothing, not even the
// devices' pings, and the devices, hearing no pong, dropped their
// connections and reconnected elsewhere (129 of 200 in one restart in
// chaos), adding a reconnect storm to the restart's backlog.
func (c *conn) queueSend(s *Send) {
	c.smu.Lock()
	defer c.smu.Unlock()
	for len(c.pending) >= maxPendingSends && !c.closed() {
		c.sendRoom.Wait()
	}
	if c.closed() {
		return // never answered: the client sends it again on its next connection
	}
	c.pending = append(c.pending, s)
	if !c.sending {
		c.sending = true
		c.sender.Add(1)
		go c.sendLoop()
	}
}

// sendLoop submits the queued sends in the order they were read, each once
// the one before it is answered, until none is left or the connection
// closes.
func (c *conn) sendLoop() {
	defer c.sender.Done()
	// A send in flight when the connection closes is given up: its answer
	// could reach no one (the client sends it again on its next
	// connection), and a gateway shutting down while the broker is away
	// would wait the whole write timeout for it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		c.smu.Lock()
		if len(c.pending) == 0 || c.closed() {
			c.pending, c.sending = nil, false
			c.sendRoom.Broadcast()
			c.smu.Unlock()
			return
		}
		s := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.sendRoom.Signal()
		c.smu.Unlock()
		c.handleSend(ctx, s)
	}
}

func (c *conn) handleSend(ctx context.Context, s *Send) {
	if !c.admitSend(s) {
		return
	}
	in := ingest.Send{ConversationID: s.ConversationID, ClientMsgID: s.ClientMsgID, SenderUserID: c.user,
		SenderDeviceID: c.device, ClientSeq: s.ClientSeq}
	var msg *imv1.ChatMessage
	if s.Message != nil {
		msg = &imv1.ChatMessage{ContentType: s.Message.ContentType, Body: []byte(s.Message.Body)}
	}
	switch {
	case s.Revision != nil && s.Revision.Op == "edit":
		in.Revision = &imv1.Revision{TargetSeq: s.Revision.TargetSeq, Op: &imv1.Revision_Edit{Edit: msg}}
	case s.Revision != nil: // recall: the decoder admits no other op
		in.Revision = &imv1.Revision{TargetSeq: s.Revision.TargetSeq, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}}
	case msg != nil:
		in.Message = msg
	default:
		in.Control = controlOf(s.Control)
	}
	c.mu.Lock()
	c.unanswered[s.ClientMsgID] = 0
	c.mu.Unlock()
	// Submitted one after another: the next send of the connection is
	// submitted only once this one is answered. (Pipelining them, answered in order,
	// broke I2 in make chaos: across a broker restart a send failed while
	// later ones of its conversation were in flight and written, and its
	// resend came after the hold window.)
	start := time.Now()
	sub, err := c.g.ingest.Enqueue(ctx, in)
	if err == nil {
		err = sub.Wait(ctx)
	}
	c.answer(submitted{conv: s.ConversationID, cmid: s.ClientMsgID, clientSeq: s.ClientSeq, start: start}, err)
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
	c.mu.Unlock()
	var ierr *ingest.Error
	switch {
	case err == nil:
		now := time.Now()
		c.g.admit.accepted(now.Sub(s.start), now) // counted once taken: a send ingest failed never comes back
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
