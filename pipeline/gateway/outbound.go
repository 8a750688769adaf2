// What the gateway writes to a device: a bounded queue per connection and
// a writer goroutine that runs only while frames are queued, batching
// them into few system calls; pings; the last frame and the close.

package gateway

import (
	"time"

	"github.com/gorilla/websocket"
)

// outFrame is a frame waiting for the writer; routedAt is set for a
// live entry (the time from it to the write is measured).
type outFrame struct {
	b                    []byte
	routedAt, receivedAt time.Time
	own                  bool // an entry of the device's own send
	// held: the connection kept the entry back (until its resume placed
	// the conversation, or a gap before it was filled), so its delay is
	// the connection's catch-up, not how far behind the pipeline is.
	held bool
}

// send queues a frame; a client too slow to take its frames is dropped
// rather than allowed to grow the queue (slow_consumer).
func (c *conn) send(frame []byte) { c.enqueue(outFrame{b: frame}) }

// sendEntry queues an entry's frame (held: see outFrame); c.mu is held.
func (c *conn) sendEntry(e Entry, held bool) {
	own := e.Sender.user == c.user && e.Sender.device == c.device && e.ClientMsgID != ""
	c.enqueue(outFrame{b: e.Payload, routedAt: e.RoutedAt, receivedAt: e.ReceivedAt, own: own, held: held})
}

// enqueue queues f unless the connection is closing. Once a frame is
// dropped for a full queue nothing after it may be queued or written: the
// device would see a later seq without the dropped one (a gap) and could
// acknowledge past it.
func (c *conn) enqueue(f outFrame) {
	c.wmu.Lock()
	if c.dropped || c.closed() {
		c.wmu.Unlock()
		return
	}
	if len(c.queue) >= c.g.cfg.OutboundQueue {
		c.dropped = true
		c.wmu.Unlock()
		c.fail(&ProtocolError{Code: CodeSlowConsumer, Message: "the client reads too slowly"}, websocket.ClosePolicyViolation)
		return
	}
	c.queue = append(c.queue, f)
	c.startWriter()
	c.wmu.Unlock()
	c.g.metrics.framesOut.Inc()
}

// startWriter starts the writer unless one runs; wmu is held.
func (c *conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeQueued()
	}
}

// writeQueued writes what is queued until nothing is; once the connection
// closes it drops what is left (see enqueue), writes the last frame and
// the close, and closes the socket.
func (c *conn) writeQueued() {
	for {
		c.wmu.Lock()
		frames, closing := c.queue, c.closed()
		c.queue = nil // an idle connection keeps no queue
		if len(frames) == 0 && !closing {
			c.writing = false
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
		if closing {
			c.finish()
			return
		}
		if err := c.writeFrames(frames); err != nil {
			c.close(websocket.CloseAbnormalClosure, "write failed")
		}
	}
}

func (c *conn) finish() {
	defer close(c.done)
	defer c.ws.Close()
	c.wmu.Lock()
	if c.ping != nil {
		c.ping.Stop()
	}
	c.wmu.Unlock()
	if c.lastFrame != nil {
		c.write(websocket.TextMessage, c.lastFrame)
	}
	c.write(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText))
}

func (c *conn) write(kind int, b []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(kind, b)
}

// pingNow pings the client (WriteControl may run beside the writer) and
// schedules the next ping.
func (c *conn) pingNow() {
	if c.closed() {
		return
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
		c.close(websocket.CloseAbnormalClosure, "ping failed")
		return
	}
	c.wmu.Lock()
	if !c.closed() {
		c.ping.Reset(c.g.cfg.PingInterval)
	}
	c.wmu.Unlock()
}

// writeFrames writes frames, several in one system call, then measures
// the live entries among them.
func (c *conn) writeFrames(frames []outFrame) error {
	if len(frames) > 1 && c.wire != nil {
		c.wire.begin()
	}
	for _, f := range frames {
		if c.closed() {
			break
		}
		if err := c.write(websocket.TextMessage, f.b); err != nil {
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
	own := 0
	for _, f := range frames {
		if !f.routedAt.IsZero() {
			c.g.metrics.writeDelay.Observe(max(now.Sub(f.routedAt), 0).Seconds())
			if !f.held {
				delays = append(delays, max(now.Sub(f.receivedAt), 0))
			}
			if f.own {
				own++
			}
		}
	}
	c.g.admit.entries(delays, own, now)
	return nil
}
