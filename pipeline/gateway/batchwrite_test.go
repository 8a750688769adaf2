package gateway

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestBatchedWritesLeaveTogether: writes inside a batch reach the peer only
// at the flush, in one piece and in order; writes outside a batch go at once.
func TestBatchedWritesLeaveTogether(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := &batchConn{Conn: server, bufs: &sync.Pool{}}
	read := func(n int) string {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(client, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	go c.Write([]byte("now"))
	if got := read(3); got != "now" {
		t.Fatalf("read %q outside a batch", got)
	}

	// net.Pipe's writes wait for a reader: a batched write that went to the
	// wire would block here.
	c.begin()
	for _, p := range []string{"a", "bc", "def"} {
		if n, err := c.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write in a batch: %d, %v", n, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.flush(time.Now().Add(5 * time.Second)) }()
	if got := read(6); got != "abcdef" {
		t.Fatalf("flushed %q, want abcdef", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.full() || c.buf != nil {
		t.Fatal("the connection still holds its buffer after the flush")
	}

	// The next batch may reuse the pooled buffer: it starts empty.
	c.begin()
	c.Write([]byte("gh"))
	go func() { done <- c.flush(time.Now().Add(5 * time.Second)) }()
	if got := read(2); got != "gh" {
		t.Fatalf("second batch flushed %q, want gh", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
