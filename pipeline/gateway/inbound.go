// What a device writes to the gateway after hello: frames read within the
// size limit and handed to their handlers (sends.go, positions.go,
// sync.go, reads.go).

package gateway

import (
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// readLoop reads the frames after hello until the connection closes.
func (c *conn) readLoop() {
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
			c.queueSend(f.Send)
		case f.Ack != nil:
			c.handleAck(f.Ack)
		case f.Sync != nil:
			go c.handleSync(f.Sync)
		case f.Read != nil:
			c.handleRead(f.Read)
		case f.Conversations != nil:
			go c.handleConversations()
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
