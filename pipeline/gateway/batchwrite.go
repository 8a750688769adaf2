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
// go straight through. The buffer is borrowed from bufs for one batch: an
// idle connection holds none (it was 17 KiB of every idle connection's
// heap, issue 16).
type batchConn struct {
	net.Conn
	bufs *sync.Pool // of *[]byte; nil: a buffer per batch

	mu       sync.Mutex
	batching bool
	buf      *[]byte // while batching
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		if c.buf == nil {
			c.buf = c.borrow()
		}
		*c.buf = append(*c.buf, p...)
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
	return c.buf != nil && len(*c.buf) >= maxBatchBytes
}

func (c *batchConn) borrow() *[]byte {
	if c.bufs != nil {
		if b, ok := c.bufs.Get().(*[]byte); ok {
			return b
		}
	}
	b := make([]byte, 0, 4096)
	return &b
}

// flush writes what was gathered, within deadline, and ends the batch.
func (c *batchConn) flush(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	b := c.buf
	if b == nil {
		return nil
	}
	c.buf = nil
	c.Conn.SetWriteDeadline(deadline)
	_, err := c.Conn.Write(*b)
	if c.bufs != nil && cap(*b) <= maxBatchBytes { // a large one is left to the collector
		*b = (*b)[:0]
		c.bufs.Put(b)
	}
	return err
}

// batchingWriter hands the WebSocket upgrader a batchConn when it hijacks
// the HTTP connection.
type batchingWriter struct {
	http.ResponseWriter
	bufs *sync.Pool
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
	w.conn = &batchConn{Conn: c, bufs: w.bufs}
	return w.conn, rw, nil
}
