package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func testConn(queue int, rate float64, burst int) *conn {
	g := &Gateway{cfg: Config{SendsPerSecond: rate, SendBurst: burst}, metrics: newMetrics(nil), admit: newAdmission(0, time.Now())}
	g.cfg.OutboundQueue = queue
	// writing: the test plays the writer (or starts writeQueued itself).
	return &conn{g: g, quit: make(chan struct{}), done: make(chan struct{}), writing: true,
		tokens: float64(burst), refill: time.Now()}
}

func (c *conn) queued() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.queue)
}

// TestSlowClientIsDroppedWithReason: a client that does not take its
// frames fills its bounded queue and is disconnected with slow_consumer,
// never allowed to grow memory.
func TestSlowClientIsDroppedWithReason(t *testing.T) {
	c := testConn(2, 50, 100)
	for i := 0; i < 2; i++ {
		c.send([]byte(`{"type":"pong"}`))
	}
	if c.closed() {
		t.Fatal("closed before the queue was full")
	}
	c.send([]byte(`{"type":"pong"}`)) // the queue is full
	if !c.closed() {
		t.Fatal("a full queue did not close the connection")
	}
	var f errorFrame
	if err := json.Unmarshal(c.lastFrame, &f); err != nil || f.Code != CodeSlowConsumer || !f.Fatal {
		t.Fatalf("last frame %s, want a fatal slow_consumer error", c.lastFrame)
	}
	if n := c.queued(); n != 2 {
		t.Fatalf("queue holds %d frames, want its bound 2", n)
	}
}

// TestNothingFollowsADroppedFrame: once a frame is dropped for a full
// queue, no later frame is queued even when the writer has made room (the
// device would see seq n+1 without n), and the writer writes none of what
// is queued, only the fatal error and the close.
func TestNothingFollowsADroppedFrame(t *testing.T) {
	c := testConn(2, 50, 100)
	c.send([]byte(`{"n":1}`))
	c.send([]byte(`{"n":2}`))
	c.send([]byte(`{"n":3}`)) // dropped: the queue is full
	c.wmu.Lock()
	c.queue = c.queue[1:] // the writer takes frame 1
	c.wmu.Unlock()
	for i := 0; i < 100; i++ {
		c.send([]byte(`{"n":4}`))
	}
	if n := c.queued(); n != 1 {
		t.Fatalf("queue holds %d frames after the drop, want only frame 2", n)
	}

	upgraded := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		upgraded <- ws
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c.ws = <-upgraded
	go c.writeQueued()
	var got []string
	for {
		_, b, err := client.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("read ended with %v, want the policy-violation close", err)
			}
			break
		}
		got = append(got, string(b))
	}
	<-c.done
	if len(got) != 1 || !strings.Contains(got[0], CodeSlowConsumer) {
		t.Fatalf("client got %q after the drop, want only the slow_consumer error", got)
	}
}

func TestSendRateIsBounded(t *testing.T) {
	c := testConn(1, 10, 3)
	allowed := 0
	for i := 0; i < 10; i++ {
		if ok, _ := c.allowSend(); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("%d sends allowed at once, want the burst of 3", allowed)
	}
	c.refill = c.refill.Add(-200 * time.Millisecond) // 200ms at 10/s refills 2
	a, _ := c.allowSend()
	b, _ := c.allowSend()
	last, wait := c.allowSend()
	if !a || !b || last {
		t.Fatal("the bucket did not refill at the configured rate")
	}
	if wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("retry hint %v, want up to one token's time (100ms at 10/s)", wait)
	}
}
