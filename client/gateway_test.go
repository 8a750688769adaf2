package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scriptedGateway speaks the gateway's side of the protocol from a script:
// each connection gets welcome, then serve reads the client's frames and
// writes what the test says. The client's wiring is tested against it; the
// real gateway is exercised through the load generator's tests.
type scriptedGateway struct {
	srv   *httptest.Server
	serve func(n int, hello map[string]any, c *gatewayConn)

	mu    sync.Mutex
	conns int
}

type gatewayConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (g *gatewayConn) write(frame string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ws.WriteMessage(websocket.TextMessage, []byte(frame))
}

// read returns the next frame from the client (nil when it is gone).
func (g *gatewayConn) read() map[string]any {
	_, b, err := g.ws.ReadMessage()
	if err != nil {
		return nil
	}
	var f map[string]any
	json.Unmarshal(b, &f)
	return f
}

func newScriptedGateway(serve func(n int, hello map[string]any, c *gatewayConn)) *scriptedGateway {
	g := &scriptedGateway{serve: serve}
	up := websocket.Upgrader{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		c := &gatewayConn{ws: ws}
		hello := c.read()
		g.mu.Lock()
		g.conns++
		n := g.conns
		g.mu.Unlock()
		c.write(`{"type":"welcome","user_id":"alice","device_id":"phone","gateway_id":"gw-test"}`)
		g.serve(n, hello, c)
	}))
	return g
}

func (g *scriptedGateway) url() string { return "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/ws" }

func msg(conv string, seq int, sender, cmid string) string {
	b, _ := json.Marshal(map[string]any{"type": "msg", "conversation_id": conv, "seq": seq, "msg_id": "m", "sender_user_id": sender,
		"sender_device_id": "phone", "client_msg_id": cmid, "sequenced_at_ms": 1, "message": map[string]string{"content_type": "text/plain", "body": cmid}})
	return string(b)
}

// collect runs a client against g and gathers what it hands on.
type collected struct {
	mu      sync.Mutex
	entries []uint64
	answers []Answer
	written []string
	done    chan struct{}
	want    int
}

func (c *collected) entry(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e.Seq)
	if len(c.entries) == c.want {
		close(c.done)
	}
}

// A hole is filled by a sync after GapWait; entries come once, in order.
func TestClientFillsAHoleWithASync(t *testing.T) {
	syncs := make(chan map[string]any, 1)
	g := newScriptedGateway(func(n int, hello map[string]any, c *gatewayConn) {
		c.write(msg("g:team", 1, "bob", "b1"))
		c.write(msg("g:team", 3, "bob", "b3"))
		c.write(msg("g:team", 3, "bob", "b3")) // a repeat
		for f := c.read(); f != nil; f = c.read() {
			if f["type"] == "sync" {
				syncs <- f
				c.write(msg("g:team", 2, "bob", "b2"))
				c.write(`{"type":"synced","conversation_id":"g:team","up_to_seq":2,"complete":true}`)
			}
		}
	})
	t.Cleanup(g.srv.Close)
	got := &collected{done: make(chan struct{}), want: 3}
	c, err := New(Config{URLs: []string{g.url()}, Token: "t", GapWait: 1, AckDelay: -1, Events: Events{Entry: got.entry}})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run()
	t.Cleanup(c.Close)
	<-got.done
	f := <-syncs
	if f["conversation_id"] != "g:team" || f["after_seq"] != 1.0 || f["limit"] != 1.0 {
		t.Fatalf("sync %v: want after 1, limit 1", f)
	}
	if fmt.Sprint(got.entries) != "[1 2 3]" {
		t.Fatalf("entries %v, want 1 2 3", got.entries)
	}
}

// A lost connection: the client redials, resumes after what it delivered,
// and writes its unanswered send again with the same ids.
func TestClientResumesAndResendsAfterALostConnection(t *testing.T) {
	hellos := make(chan map[string]any, 2)
	sends := make(chan map[string]any, 2)
	g := newScriptedGateway(func(n int, hello map[string]any, c *gatewayConn) {
		hellos <- hello
		if n == 1 {
			c.write(msg("dm:alice:bob", 1, "bob", "b1"))
			sends <- c.read() // then the connection drops, unanswered
			return
		}
		f := c.read()
		sends <- f
		c.write(`{"type":"accepted","conversation_id":"dm:alice:bob","client_msg_id":"` + f["client_msg_id"].(string) + `"}`)
		c.write(msg("dm:alice:bob", 2, "alice", f["client_msg_id"].(string)))
		for c.read() != nil {
		}
	})
	t.Cleanup(g.srv.Close)
	got := &collected{done: make(chan struct{}), want: 2}
	firstEntry := make(chan struct{})
	settlements := make(chan Settlement, 2)
	var once sync.Once
	var answers sync.WaitGroup
	answers.Add(1)
	type connection struct {
		url  string
		down time.Duration
	}
	connections := make(chan connection, 2)
	c, err := New(Config{URLs: []string{g.url()}, Token: "t", AckDelay: -1, Events: Events{
		Entry:     func(e Entry) { got.entry(e); once.Do(func() { close(firstEntry) }) },
		Answer:    func(a Answer) { answers.Done() },
		Settled:   func(st Settlement) { settlements <- st },
		Connected: func(url string, down time.Duration) { connections <- connection{url, down} }}})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run()
	t.Cleanup(c.Close)
	first := <-hellos
	if _, ok := first["resume"]; ok {
		t.Fatalf("first hello %v resumes: nothing was delivered", first)
	}
	<-firstEntry // delivered before the send, so the next hello resumes after it
	cmid, seq, err := c.Send(Send{Conversation: "dm:alice:bob", Message: &Message{ContentType: "text/plain", Body: "hi"}})
	if err != nil || seq != 1 {
		t.Fatalf("Send: %v, client_seq %d", err, seq)
	}
	s1, second, s2 := <-sends, <-hellos, <-sends
	if s1["client_msg_id"] != cmid || s2["client_msg_id"] != cmid || s2["client_seq"] != 1.0 {
		t.Fatalf("sends %v then %v: want %s, client_seq 1, both times", s1, s2, cmid)
	}
	if r, _ := second["resume"].(map[string]any); r["dm:alice:bob"] != 1.0 {
		t.Fatalf("second hello %v: want resume after seq 1", second)
	}
	<-got.done
	answers.Wait()
	if st := <-settlements; st.Kind != "sequenced" || st.ClientMsgID != cmid || st.Seq != 2 {
		t.Fatalf("settlement %+v: want %s sequenced at 2", st, cmid)
	}
	if c.Pending() != 0 {
		t.Fatalf("%d sends still pending after their own entry came", c.Pending())
	}
	next := func() connection {
		select {
		case c := <-connections:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no Connected event in 10 s")
			return connection{}
		}
	}
	if first, again := next(), next(); first.url != g.url() || first.down != 0 || again.url != g.url() || again.down <= 0 {
		t.Fatalf("connected %+v, then %+v: want %s first with no downtime, then again after some", first, again, g.url())
	}
}

// Read marks go out as read frames (the highest per conversation; a mark
// at 0, nothing read, never goes: it failed 1 run in 20 when the writer
// sent it before the mark that followed), and receipts come back as
// events.
func TestClientMarksReadAndHearsReceipts(t *testing.T) {
	reads := make(chan map[string]any, 1)
	g := newScriptedGateway(func(n int, hello map[string]any, c *gatewayConn) {
		c.write(msg("dm:alice:bob", 1, "bob", "b1"))
		for f := c.read(); f != nil; f = c.read() {
			if f["type"] == "read" {
				reads <- f
				c.write(`{"type":"receipt","conversation_id":"dm:alice:bob","user_id":"bob","seq":1}`)
			}
		}
	})
	t.Cleanup(g.srv.Close)
	receipts := make(chan string, 1)
	var cl *Client
	cl, err := New(Config{URLs: []string{g.url()}, Token: "t", AckDelay: -1, Events: Events{
		Entry:   func(e Entry) { cl.MarkRead(e.Conversation, 0); cl.MarkRead(e.Conversation, e.Seq) },
		Receipt: func(conv, user string, seq uint64) { receipts <- fmt.Sprintf("%s %s %d", conv, user, seq) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	go cl.Run()
	t.Cleanup(cl.Close)
	if f := <-reads; f["conversation_id"] != "dm:alice:bob" || f["seq"] != 1.0 {
		t.Fatalf("read frame %v: want dm:alice:bob up to 1", f)
	}
	if r := <-receipts; r != "dm:alice:bob bob 1" {
		t.Fatalf("receipt %q", r)
	}
}

// A reset (the stream rebuilt under a new epoch) starts the conversation
// again from seq 1, and the next hello resumes with {seq, epoch}.
func TestClientStartsAfreshOnReset(t *testing.T) {
	hellos := make(chan map[string]any, 2)
	withEpoch := func(frame string, epoch int) string {
		return strings.Replace(frame, `"type":"msg"`, fmt.Sprintf(`"type":"msg","epoch":%d`, epoch), 1)
	}
	g := newScriptedGateway(func(n int, hello map[string]any, c *gatewayConn) {
		hellos <- hello
		if n > 1 {
			for c.read() != nil {
			}
			return
		}
		c.write(withEpoch(msg("dm:alice:bob", 1, "bob", "b1"), 5))
		c.write(withEpoch(msg("dm:alice:bob", 2, "bob", "b2"), 5))
		c.write(`{"type":"reset","conversation_id":"dm:alice:bob","epoch":9,"message":"rebuilt"}`)
		c.write(withEpoch(msg("dm:alice:bob", 1, "bob", "n1"), 9))
		c.write(withEpoch(msg("dm:alice:bob", 2, "bob", "b2"), 5)) // late, of the old stream
		c.write(withEpoch(msg("dm:alice:bob", 2, "bob", "n2"), 9))
		c.read() // the connection then drops
	})
	t.Cleanup(g.srv.Close)
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	c, err := New(Config{URLs: []string{g.url()}, Token: "t", AckDelay: -1, Events: Events{
		Entry: func(e Entry) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%d/%d", e.Epoch, e.Seq))
			if len(got) == 4 {
				close(done)
			}
		},
		Reset: func(conv string, epoch uint64) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("reset %s %d", conv, epoch))
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run()
	t.Cleanup(c.Close)
	<-hellos
	<-done
	c.Send(Send{Conversation: "dm:alice:bob", Message: &Message{Body: "x"}}) // read by the first connection, which then drops
	second := <-hellos
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[5/1 5/2 reset dm:alice:bob 9 9/1 9/2]" {
		t.Fatalf("entries %v", got)
	}
	r, _ := second["resume"].(map[string]any)
	if p, _ := r["dm:alice:bob"].(map[string]any); p["seq"] != 2.0 || p["epoch"] != 9.0 {
		t.Fatalf("second hello %v: want resume {seq 2, epoch 9}", second)
	}
}

// A gateway that goes silent without closing (a network partition drops
// packets) is pinged, then dropped after twice KeepAlive, and the client
// reconnects; one that answers the pings keeps its connection however long
// it has nothing to say.
func TestClientDropsASilentConnection(t *testing.T) {
	const keepAlive = 50 * time.Millisecond
	release := make(chan struct{})
	hellos := make(chan int, 3)
	g := newScriptedGateway(func(n int, hello map[string]any, c *gatewayConn) {
		hellos <- n
		switch n {
		case 1: // answers pings (they are read) and writes after 20 keepalives
			go func() {
				time.Sleep(20 * keepAlive) // the silence the scenario is about
				c.write(msg("dm:alice:bob", 1, "bob", "b1"))
			}()
			for c.read() != nil {
			}
		case 2: // silent: reads nothing, so its pings go unanswered
			<-release
		default:
			for c.read() != nil {
			}
		}
	})
	t.Cleanup(g.srv.Close)
	t.Cleanup(func() { close(release) })
	entries := make(chan uint64, 1)
	disconnects := make(chan error, 3)
	c, err := New(Config{URLs: []string{g.url()}, Token: "t", AckDelay: -1, KeepAlive: keepAlive, Events: Events{
		Entry:        func(e Entry) { entries <- e.Seq },
		Disconnected: func(err error) { disconnects <- err }}})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run()
	t.Cleanup(c.Close)
	<-hellos
	select {
	case <-entries:
	case err := <-disconnects:
		t.Fatalf("a gateway answering pings was dropped: %v", err)
	}
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	ws.Close() // to the silent second connection
	<-disconnects
	if n := <-hellos; n != 2 {
		t.Fatalf("connection %d, want 2", n)
	}
	start := time.Now()
	err = <-disconnects
	if !strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent connection dropped with %v, want a read timeout", err)
	}
	if n := <-hellos; n != 3 {
		t.Fatalf("connection %d, want 3 after the silent one", n)
	}
	t.Logf("silent connection dropped after %v", time.Since(start).Round(time.Millisecond))
}
