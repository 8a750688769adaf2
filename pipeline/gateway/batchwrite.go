package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxBatchBytes bounds what one batched write holds.
const maxBatchBytes = 256 << 10

// batchConn is a connection whose writes can be gathered: between begin
// and flush, the frames the WebSocket library writes are kept and then sent
// in one system call. A write per frame was the gateway's largest cost (a
// fifth of its CPU at 3,000 deliveries/s, docs/benchmarks.md); frames that
// wait in a connection's queue together now leave together. Outside a
// batch (the handshake, pongs written by the read loop, the close) writes
// go straight through.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// begin starts gathering writes.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// full reports whether the batch should be flushed before more is added.
func (c *batchConn) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) >= maxBatchBytes
}

// flush writes what was gathered, within deadline, and ends the batch.
func (c *batchConn) flush(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if len(c.buf) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(deadline)
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxBatchBytes {
		c.buf = nil // do not keep a large buffer for an idle connection
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// batchingWriter hands the WebSocket upgrader a batchConn when it hijacks
// the HTTP connection.
type batchingWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (w *batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: c}
	return w.conn, rw, nil
}
