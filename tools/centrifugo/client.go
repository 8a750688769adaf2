package centrifugo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrClosed is Err after Close, and what calls on a closed Client return.
var ErrClosed = errors.New("centrifugo: client closed")

const (
	// maxFrame bounds a batch of commands written as one frame; Centrifugo's
	// websocket.message_size_limit defaults to 64 KiB.
	maxFrame = 16 << 10
	// pingGrace is how late a server ping may be before the connection is
	// declared dead (the official SDKs use 10 s too).
	pingGrace    = 10 * time.Second
	writeTimeout = 10 * time.Second
)

// Options configure a Client. The zero value connects anonymously and drops
// publications.
type Options struct {
	// Token is the connection JWT (see Token).
	Token string
	// Name is the client name the server logs; default "seqchat".
	Name string
	// OnPublication gets every publication in the order the server sent
	// them, from the reader goroutine, so it must not block. The recovered
	// publications of SubscribeSince come through it too, before the
	// subscribe call returns.
	OnPublication func(channel string, offset uint64, data json.RawMessage)
	// OnUnsubscribe is told when the server unsubscribes the client from a
	// channel (for example 2500 "insufficient state"); reader goroutine too.
	OnUnsubscribe func(channel string, code uint32, reason string)
	// QueueSize is how many commands may wait for the writer; default 1024.
	// Publish blocks while the queue is full.
	QueueSize int
	// Dialer defaults to websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

// Client is one connection. Its methods are safe for concurrent use.
type Client struct {
	conn       *websocket.Conn
	opts       Options
	queue      chan []byte   // encoded commands for the writer
	pongs      chan struct{} // at most one pong owed: never more pongs than pings
	stop       chan struct{} // closed by shutdown
	writerDone chan struct{}
	done       chan struct{} // closed when the reader has failed every pending command
	stopOnce   sync.Once

	mu      sync.Mutex
	err     error // why the client stopped; set once by shutdown
	nextID  uint32
	pending map[uint32]func(*reply, error) // nil once the reader drained it

	// Owned by the reader goroutine.
	pingTimeout time.Duration
	pong        bool
}

// Dial opens the WebSocket at url (ws://host:port/connection/websocket),
// sends connect and waits for its reply.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	dialer := opts.Dialer
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	conn, resp, err := dialer.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("centrifugo: dial %s: %w", url, err)
	}
	if opts.Name == "" {
		opts.Name = "seqchat"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	c := &Client{
		conn:       conn,
		opts:       opts,
		queue:      make(chan []byte, opts.QueueSize),
		pongs:      make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		pending:    make(map[uint32]func(*reply, error)),
	}
	go c.writeLoop()
	go c.readLoop()

	res := make(chan error, 1)
	err = c.send(&command{Connect: &connectRequest{Token: opts.Token, Name: opts.Name}}, func(r *reply, err error) {
		switch {
		case err != nil:
		case r.Error != nil:
			err = r.Error
		case r.Connect == nil:
			err = errors.New("connect reply without a result")
		default:
			c.pong = r.Connect.Pong
			if r.Connect.Ping > 0 {
				c.pingTimeout = time.Duration(r.Connect.Ping)*time.Second + pingGrace
			}
		}
		res <- err
	})
	if err == nil {
		select {
		case err = <-res:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		c.shutdown(err)
		<-c.done
		return nil, fmt.Errorf("centrifugo: connect to %s: %w", url, err)
	}
	return c, nil
}

// Position is a place in a channel's stream.
type Position struct {
	Offset uint64
	Epoch  string
}

// SubscribeResult describes the channel's stream when the subscription
// started: publications that follow have offsets Offset+1, Offset+2, ...
// within Epoch. After a recovery Offset is the one asked for, and the
// recovered publications are the first that follow.
type SubscribeResult struct {
	Offset      uint64
	Epoch       string
	Recoverable bool // the server keeps history for recovery
	Positioned  bool // the server checks the client has not missed anything
	Recovered   bool // SubscribeSince only: every missed publication was recovered
}

// Subscribe subscribes to channel and waits for the reply. If ctx ends first
// the subscription may still complete on the server.
func (c *Client) Subscribe(ctx context.Context, channel string) (SubscribeResult, error) {
	return c.subscribe(ctx, &subscribeRequest{Channel: channel})
}

// SubscribeSince subscribes to channel asking the server to recover the
// publications after since; they reach OnPublication before it returns.
func (c *Client) SubscribeSince(ctx context.Context, channel string, since Position) (SubscribeResult, error) {
	return c.subscribe(ctx, &subscribeRequest{Channel: channel, Recover: true, Epoch: since.Epoch, Offset: since.Offset})
}

func (c *Client) subscribe(ctx context.Context, req *subscribeRequest) (SubscribeResult, error) {
	type outcome struct {
		res SubscribeResult
		err error
	}
	done := make(chan outcome, 1) // buffered: the reply may come after ctx ended
	err := c.send(&command{Subscribe: req}, func(r *reply, err error) {
		switch {
		case err != nil:
		case r.Error != nil:
			err = r.Error
		case r.Subscribe == nil:
			err = errors.New("subscribe reply without a result")
		}
		if err != nil {
			done <- outcome{err: err}
			return
		}
		s := r.Subscribe
		for _, p := range s.Publications {
			c.publication(req.Channel, p)
		}
		done <- outcome{res: SubscribeResult{
			Offset: s.Offset, Epoch: s.Epoch, Recoverable: s.Recoverable,
			Positioned: s.Positioned, Recovered: s.Recovered,
		}}
	})
	if err != nil {
		return SubscribeResult{}, fmt.Errorf("centrifugo: subscribe %s: %w", req.Channel, err)
	}
	select {
	case o := <-done:
		if o.err != nil {
			return SubscribeResult{}, fmt.Errorf("centrifugo: subscribe %s: %w", req.Channel, o.err)
		}
		return o.res, nil
	case <-ctx.Done():
		return SubscribeResult{}, fmt.Errorf("centrifugo: subscribe %s: %w", req.Channel, ctx.Err())
	}
}

// Publish queues a publish of data (valid JSON) to channel, blocking while
// the queue is full. If it returns nil, done (if not nil) is called exactly
// once from the reader goroutine with the reply's error (an *Error), or the
// connection's error; if it returns an error, done is never called.
// Publishes from one goroutine reach the server in call order.
func (c *Client) Publish(channel string, data json.RawMessage, done func(error)) error {
	err := c.send(&command{Publish: &publishRequest{Channel: channel, Data: data}}, func(r *reply, err error) {
		if err == nil && r.Error != nil {
			err = r.Error
		}
		if done != nil {
			done(err)
		}
	})
	if err != nil {
		return fmt.Errorf("centrifugo: publish %s: %w", channel, err)
	}
	return nil
}

// Done is closed when the client has stopped, by Close or by a failure.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the client stopped (ErrClosed after Close, a *DisconnectError
// when the server closed the connection); nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection, fails the commands still waiting for replies
// with ErrClosed and waits for the client's goroutines.
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	<-c.done
	return nil
}

// send registers fn for cmd's reply and queues cmd. It returns an error,
// and fn is not called, only when cmd could not be queued.
func (c *Client) send(cmd *command, fn func(*reply, error)) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	c.mu.Unlock()

	cmd.ID = id
	b, err := encodeCommands(nil, cmd)
	if err != nil {
		return err
	}

	c.mu.Lock()
	if c.pending == nil || c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.pending[id] = fn
	c.mu.Unlock()

	select {
	case c.queue <- b:
		return nil
	case <-c.stop:
		c.mu.Lock()
		_, mine := c.pending[id]
		delete(c.pending, id)
		err := c.err
		c.mu.Unlock()
		if mine {
			return err
		}
		return nil // the reader has failed it already: fn was called
	}
}

// shutdown records err as the reason the client stops (the first one wins)
// and closes the connection, which ends the reader and the writer.
func (c *Client) shutdown(err error) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.stop)
		if errors.Is(err, ErrClosed) {
			// A polite close; the connection is closed below regardless.
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		}
		c.conn.Close()
	})
}

// writeLoop is the only writer of data frames (gorilla allows one). It
// batches whatever is queued into one frame of newline-separated commands.
func (c *Client) writeLoop() {
	defer close(c.writerDone)
	var frame, carry []byte
	for {
		frame = frame[:0]
		if carry != nil {
			frame, carry = append(frame, carry...), nil
		} else {
			select {
			case <-c.stop:
				return
			case <-c.pongs:
				frame = append(frame, "{}"...)
			case b := <-c.queue:
				frame = append(frame, b...)
			}
		}
	batch:
		for len(frame) < maxFrame {
			select {
			case <-c.pongs:
				frame = append(frame, "\n{}"...)
			case b := <-c.queue:
				if len(frame)+1+len(b) > maxFrame {
					carry = b
					break batch
				}
				frame = append(append(frame, '\n'), b...)
			default:
				break batch
			}
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := c.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			c.shutdown(fmt.Errorf("centrifugo: write: %w", err))
			return
		}
	}
}

// readLoop reads until the connection fails, then fails every command still
// waiting for a reply with the client's error.
func (c *Client) readLoop() {
	c.shutdown(c.read())
	<-c.writerDone
	c.mu.Lock()
	pending, err := c.pending, c.err
	c.pending = nil
	c.mu.Unlock()
	for _, fn := range pending {
		fn(nil, err)
	}
	close(c.done)
}

func (c *Client) read() error {
	for {
		if c.pingTimeout > 0 {
			_ = c.conn.SetReadDeadline(time.Now().Add(c.pingTimeout))
		}
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			return c.readError(err)
		}
		if err := decodeFrame(frame, c.handle); err != nil {
			return fmt.Errorf("centrifugo: %w", err)
		}
	}
}

func (c *Client) readError(err error) error {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return &DisconnectError{Code: uint32(ce.Code), Reason: ce.Text}
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("centrifugo: no ping from the server within %v: %w", c.pingTimeout, err)
	default:
		return fmt.Errorf("centrifugo: read: %w", err) // after Close, shutdown keeps ErrClosed
	}
}

// handle dispatches one reply; an error ends the connection.
func (c *Client) handle(r *reply) error {
	switch {
	case r.ID > 0:
		c.mu.Lock()
		fn := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if fn != nil { // nil: a reply to nothing we wait for; ignore it
			fn(r, nil)
		}
	case r.Push != nil:
		p := r.Push
		switch {
		case p.Pub != nil:
			c.publication(p.Channel, *p.Pub)
		case p.Unsubscribe != nil:
			if c.opts.OnUnsubscribe != nil {
				c.opts.OnUnsubscribe(p.Channel, p.Unsubscribe.Code, p.Unsubscribe.Reason)
			}
		case p.Disconnect != nil:
			return p.Disconnect
		}
	case r.isPing():
		if c.pong {
			select {
			case c.pongs <- struct{}{}:
			default: // a pong is already owed
			}
		}
	}
	return nil
}

func (c *Client) publication(channel string, p publication) {
	if c.opts.OnPublication != nil {
		c.opts.OnPublication(channel, p.Offset, p.Data)
	}
}

// Token is a connection JWT for Centrifugo signed with HS256: claim sub is
// user, exp is expires (left out when expires is zero: no expiry).
func Token(secret []byte, user string, expires time.Time) string {
	enc := base64.RawURLEncoding
	claims := struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp,omitempty"`
	}{Sub: user}
	if !expires.IsZero() {
		claims.Exp = expires.Unix()
	}
	payload, _ := json.Marshal(claims) // a string and an int: cannot fail
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}
