package centrifugo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestEncodeCommandsJoinsWithNewlines(t *testing.T) {
	frame, err := encodeCommands(nil,
		&command{ID: 1, Connect: &connectRequest{Token: "t"}},
		&command{ID: 2, Publish: &publishRequest{Channel: "c", Data: json.RawMessage(` {"a": 1} `)}},
		&command{},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":1,"connect":{"token":"t"}}` + "\n" +
		`{"id":2,"publish":{"channel":"c","data":{"a":1}}}` + "\n" + `{}`
	if string(frame) != want {
		t.Fatalf("frame\n got %s\nwant %s", frame, want)
	}
	if _, err := encodeCommands(nil, &command{ID: 3, Publish: &publishRequest{Channel: "c", Data: json.RawMessage(`{bad`)}}); err == nil {
		t.Fatal("publish data that is not JSON was encoded")
	}
}

func TestDecodeFrameSeveralReplies(t *testing.T) {
	frame := `{"id":1,"connect":{"client":"abc","version":"6.9.1","ping":25,"pong":true}}` + "\n" +
		`{"push":{"channel":"ch","pub":{"data":{"n":1},"offset":7}}}` + "\n" +
		`{}` + "\n" +
		`{"id":2,"error":{"code":103,"message":"permission denied"}}` + "\n" +
		`{"id":3,"subscribe":{"recoverable":true,"epoch":"e","positioned":true}}` + "\n" +
		`{"id":4,"publish":{}}`
	var got []*reply
	if err := decodeFrame([]byte(frame), func(r *reply) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("decoded %d replies, want 6", len(got))
	}
	if c := got[0].Connect; c == nil || c.Client != "abc" || c.Ping != 25 || !c.Pong {
		t.Errorf("connect reply: %+v", c)
	}
	if p := got[1].Push; p == nil || p.Channel != "ch" || p.Pub == nil || p.Pub.Offset != 7 || string(p.Pub.Data) != `{"n":1}` {
		t.Errorf("push: %+v", p)
	}
	if !got[2].isPing() {
		t.Errorf("{} is not a ping: %+v", got[2])
	}
	for i, r := range got {
		if i != 2 && r.isPing() {
			t.Errorf("reply %d taken for a ping", i)
		}
	}
	if e := got[3].Error; e == nil || e.Code != 103 || e.Error() != "centrifugo: error 103: permission denied" {
		t.Errorf("error reply: %+v", e)
	}
	if s := got[4].Subscribe; s == nil || s.Offset != 0 || s.Epoch != "e" || !s.Recoverable || !s.Positioned {
		t.Errorf("subscribe reply: %+v", s)
	}
	if got[5].Publish == nil || got[5].ID != 4 {
		t.Errorf("publish reply: %+v", got[5])
	}
	if err := decodeFrame([]byte(`{"id":1}`+"\n"+`{"id":`), func(*reply) error { return nil }); err == nil {
		t.Error("a truncated frame decoded")
	}
}

func TestToken(t *testing.T) {
	secret := []byte("s3cret")
	tok := Token(secret, "alice", time.Unix(2000000000, 0))
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	dec := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if h := dec(parts[0]); h != `{"alg":"HS256","typ":"JWT"}` {
		t.Errorf("header %s", h)
	}
	if p := dec(parts[1]); p != `{"sub":"alice","exp":2000000000}` {
		t.Errorf("payload %s", p)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if dec(parts[2]) != string(mac.Sum(nil)) {
		t.Error("bad signature")
	}
	if p := dec(strings.Split(Token(secret, "bob", time.Time{}), ".")[1]); p != `{"sub":"bob"}` {
		t.Errorf("payload without expiry %s", p)
	}
}

// fakeConn is the server side of a test connection. It yields the client's
// commands one by one, however the client batched them into frames.
type fakeConn struct {
	t    *testing.T
	ws   *websocket.Conn
	cmds []map[string]json.RawMessage
}

func (f *fakeConn) next() map[string]json.RawMessage {
	f.t.Helper()
	for len(f.cmds) == 0 {
		_, frame, err := f.ws.ReadMessage()
		if err != nil {
			f.t.Errorf("fake server: read: %v", err)
			return nil
		}
		for _, line := range strings.Split(string(frame), "\n") {
			var cmd map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &cmd); err != nil {
				f.t.Errorf("fake server: frame line %q: %v", line, err)
				return nil
			}
			f.cmds = append(f.cmds, cmd)
		}
	}
	cmd := f.cmds[0]
	f.cmds = f.cmds[1:]
	return cmd
}

// drain reads until the client goes away.
func (f *fakeConn) drain() {
	for {
		if _, _, err := f.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// send writes replies as one frame.
func (f *fakeConn) send(replies ...string) {
	if err := f.ws.WriteMessage(websocket.TextMessage, []byte(strings.Join(replies, "\n"))); err != nil {
		f.t.Errorf("fake server: write: %v", err)
	}
}

func fakeServer(t *testing.T, serve func(*fakeConn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("fake server: upgrade: %v", err)
			return
		}
		defer ws.Close()
		serve(&fakeConn{t: t, ws: ws})
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestClientAgainstFakeServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := fakeServer(t, func(f *fakeConn) {
		cmd := f.next()
		if string(cmd["id"]) != "1" || !strings.Contains(string(cmd["connect"]), `"token":"tok"`) {
			t.Errorf("first command %v, want connect with the token", cmd)
		}
		f.send(`{"id":1,"connect":{"client":"c1","ping":25,"pong":true}}`)
		// A ping must be answered with an empty command, which may come
		// before or after the subscribe the test sends meanwhile.
		f.send(`{}`)
		pongs := 0
		for cmd = f.next(); len(cmd) == 0; cmd = f.next() {
			pongs++
		}
		if pongs == 0 {
			if pong := f.next(); len(pong) != 0 {
				t.Errorf("answer to ping %v, want {}", pong)
			}
		} else if pongs > 1 {
			t.Errorf("%d pongs to one ping", pongs)
		}
		if !strings.Contains(string(cmd["subscribe"]), `"channel":"ch"`) {
			t.Errorf("command %v, want subscribe to ch", cmd)
			return
		}
		// The reply and two publications in one frame.
		f.send(`{"id":`+string(cmd["id"])+`,"subscribe":{"epoch":"ep","offset":4,"recoverable":true,"positioned":true}}`,
			`{"push":{"channel":"ch","pub":{"data":{"n":5},"offset":5}}}`,
			`{"push":{"channel":"ch","pub":{"data":{"n":6},"offset":6}}}`)
		ok, denied := f.next(), f.next()
		f.send(`{"id":`+string(denied["id"])+`,"error":{"code":103,"message":"permission denied"}}`,
			`{"id":`+string(ok["id"])+`,"publish":{}}`)
		// The third publish gets no reply: the server goes away instead.
		f.next()
		msg := websocket.FormatCloseMessage(3501, "bad request")
		if err := f.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
			t.Errorf("fake server: close: %v", err)
		}
	})

	type pub struct {
		offset uint64
		data   string
	}
	pubs := make(chan pub, 10)
	c, err := Dial(ctx, url, Options{Token: "tok", OnPublication: func(ch string, off uint64, data json.RawMessage) {
		pubs <- pub{off, string(data)}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Subscribe(ctx, "ch")
	if err != nil {
		t.Fatal(err)
	}
	if res != (SubscribeResult{Offset: 4, Epoch: "ep", Recoverable: true, Positioned: true}) {
		t.Errorf("subscribe result %+v", res)
	}
	for want := uint64(5); want <= 6; want++ {
		select {
		case p := <-pubs:
			if p.offset != want {
				t.Errorf("publication offset %d, want %d", p.offset, want)
			}
		case <-ctx.Done():
			t.Fatal("publications did not arrive")
		}
	}

	results := make(chan error, 3)
	for _, ch := range []string{"ch", "readonly:ch", "ch"} {
		if err := c.Publish(ch, json.RawMessage(`{"x":1}`), func(err error) { results <- err }); err != nil {
			t.Fatal(err)
		}
	}
	var got []error
	for range 3 {
		select {
		case err := <-results:
			got = append(got, err)
		case <-ctx.Done():
			t.Fatal("publish results did not arrive")
		}
	}
	var nils, denied, disconnected int
	for _, err := range got {
		var e *Error
		var d *DisconnectError
		switch {
		case err == nil:
			nils++
		case errors.As(err, &e) && e.Code == 103:
			denied++
		case errors.As(err, &d) && d.Code == 3501:
			disconnected++
		default:
			t.Errorf("unexpected publish result %v", err)
		}
	}
	if nils != 1 || denied != 1 || disconnected != 1 {
		t.Errorf("publish results %v, want one success, one 103, one disconnect", got)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client did not stop after the server closed")
	}
	var d *DisconnectError
	if !errors.As(c.Err(), &d) || d.Code != 3501 || d.Reason != "bad request" {
		t.Errorf("Err() = %v, want disconnect 3501 bad request", c.Err())
	}
	if err := c.Publish("ch", json.RawMessage(`1`), func(error) { t.Error("done called after a failed Publish") }); err == nil {
		t.Error("Publish on a stopped client succeeded")
	}
}

func TestCloseFailsPendingCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := fakeServer(t, func(f *fakeConn) {
		f.next()
		f.send(`{"id":1,"connect":{"client":"c1"}}`)
		f.drain() // no command gets a reply
	})
	c, err := Dial(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	if err := c.Publish("ch", json.RawMessage(`{}`), func(err error) { result <- err }); err != nil {
		t.Fatal(err)
	}
	sub := make(chan error, 1)
	go func() { _, err := c.Subscribe(ctx, "ch"); sub <- err }()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-result; !errors.Is(err, ErrClosed) {
		t.Errorf("pending publish got %v, want ErrClosed", err)
	}
	if err := <-sub; !errors.Is(err, ErrClosed) {
		t.Errorf("pending subscribe got %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
}

func TestDialConnectError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := fakeServer(t, func(f *fakeConn) {
		f.next()
		f.send(`{"id":1,"error":{"code":109,"message":"token expired"}}`)
		f.drain()
	})
	_, err := Dial(ctx, url, Options{Token: "old"})
	var e *Error
	if !errors.As(err, &e) || e.Code != 109 {
		t.Fatalf("Dial = %v, want error 109", err)
	}
}
