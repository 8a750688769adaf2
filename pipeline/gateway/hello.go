package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seqchat/seqchat/internal/auth"
)

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
	// Registered before resume places the device: a live delivery that
	// arrives meanwhile is kept until then, so the seam between history and
	// live has neither a gap nor a duplicate.
	c.mu.Lock()
	c.placing = true
	c.resumeEpochs = map[string]uint64{}
	for conv, e := range f.Hello.ResumeEpochs {
		c.resumeEpochs[conv] = e
	}
	for conv := range f.Hello.Resume {
		c.convs[conv] = &convState{reorder: NewReorder(0, 0), unplaced: true}
	}
	c.mu.Unlock()
	if !c.g.register(c) {
		c.fail(&ProtocolError{Code: CodeUnavailable, Message: "the gateway is shutting down; reconnect"}, websocket.CloseTryAgainLater)
		return false
	}
	c.registered = true
	if !c.announceOnline() {
		c.announcing.Add(1)
		go func() {
			defer c.announcing.Done()
			c.retryAnnounceOnline()
		}()
	}
	go c.resume(f.Hello.Resume)
	return true
}

// announceOnline writes the device's online presence once; false if the
// write failed.
func (c *conn) announceOnline() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.g.announce(ctx, c, true) == nil
}

// retryAnnounceOnline writes the online presence until it lands or the
// connection closes. Without it the fanout never routes the device's
// conversations here: a welcomed device would get nothing live for the
// connection's life (a presence write timed out while a broker's
// partitions moved left two devices on stall repairs alone, one read of
// history every 12.5 s). end waits for it, so the offline announcement
// always follows.
func (c *conn) retryAnnounceOnline() {
	backoff := 250 * time.Millisecond
	for c.sleep(backoff) {
		if c.announceOnline() {
			c.log.Info("presence announced after a failed attempt")
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
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

// resumeWhenHistoryAnswers is resumePositions, retried while history
// fails; false if the connection closes first.
func (c *conn) resumeWhenHistoryAnswers(sent map[string]uint64) (resume map[string]uint64, ok bool) {
	ok = c.untilHistoryAnswers(func() (err error) {
		resume, err = c.resumePositions(sent)
		return err
	})
	return resume, ok
}

// untilHistoryAnswers runs read until it succeeds, with backoff; false if
// the connection closes first (the gateway's shutdown closes it).
func (c *conn) untilHistoryAnswers(read func() error) bool {
	backoff := 200 * time.Millisecond
	for {
		err := read()
		if err == nil {
			return true
		}
		c.g.metrics.historyErrors.Inc()
		c.log.Warn("reading stored positions failed; retrying", "err", err, "backoff", backoff)
		if !c.sleep(backoff) {
			return false
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
	stored, epochs, err := c.g.cfg.History.Positions(ctx, c.user, c.device)
	if err != nil {
		return nil, err
	}
	c.storedEpochs(stored, epochs)
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
