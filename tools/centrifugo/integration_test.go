package centrifugo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// The server the integration tests use: scripts/centrifugo.sh's defaults.
const (
	EnvTestURL    = "SEQCHAT_TEST_CENTRIFUGO_URL"
	EnvSecret     = "SEQCHAT_CENTRIFUGO_SECRET"
	defaultURL    = "ws://127.0.0.1:18000/connection/websocket"
	defaultSecret = "seqchat-dev-centrifugo-secret"
	startHint     = "start it with `scripts/centrifugo.sh up`"
)

type server struct {
	url    string
	secret []byte
}

// requireServer skips only under -short (make unit); otherwise the server
// must be there: a missing one fails the test.
func requireServer(t *testing.T) server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Centrifugo; run without -short")
	}
	s := server{url: os.Getenv(EnvTestURL), secret: []byte(os.Getenv(EnvSecret))}
	if s.url == "" {
		s.url = defaultURL
	}
	if len(s.secret) == 0 {
		s.secret = []byte(defaultSecret)
	}
	return s
}

// dial connects as user with a valid token, closed at cleanup.
func (s server) dial(t *testing.T, ctx context.Context, user string, opts Options) *Client {
	t.Helper()
	opts.Token = Token(s.secret, user, time.Now().Add(time.Hour))
	c, err := Dial(ctx, s.url, opts)
	if err != nil {
		var e *Error
		var d *DisconnectError
		if errors.As(err, &e) || errors.As(err, &d) {
			t.Fatalf("Centrifugo at %s refused the connection (%v); is %s the secret scripts/centrifugo.sh used?", s.url, err, EnvSecret)
		}
		t.Fatalf("Centrifugo is not reachable at %s (%v); %s", s.url, err, startHint)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// channel is a name no other run uses, in namespace ns ("" for none).
func channel(t *testing.T, ns string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "seqchat_test_" + hex.EncodeToString(b)
	if ns != "" {
		name = ns + ":" + name
	}
	return name
}

type received struct {
	offset uint64
	data   string
}

// collector returns Options whose publications on ch go to the returned
// channel (buffered: the reader goroutine must not block).
func collector(t *testing.T, ch string, size int) (Options, <-chan received) {
	out := make(chan received, size)
	return Options{OnPublication: func(c string, offset uint64, data json.RawMessage) {
		if c != ch {
			return
		}
		select {
		case out <- received{offset, string(data)}:
		default:
			t.Errorf("more than %d publications on %s", size, ch)
		}
	}}, out
}

func expect(t *testing.T, ctx context.Context, name string, in <-chan received, offset uint64, data string) {
	t.Helper()
	select {
	case r := <-in:
		if r.offset != offset || r.data != data {
			t.Fatalf("%s: got offset %d data %s, want offset %d data %s", name, r.offset, r.data, offset, data)
		}
	case <-ctx.Done():
		t.Fatalf("%s: no publication with offset %d: %v", name, offset, ctx.Err())
	}
}

func TestIntegrationOrderedDelivery(t *testing.T) {
	s := requireServer(t)
	const n = 500
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := channel(t, "")

	var clients [2]*Client
	var subs [2]SubscribeResult
	var recv [2]<-chan received
	for i := range clients {
		var opts Options
		opts, recv[i] = collector(t, ch, 2*n)
		clients[i] = s.dial(t, ctx, fmt.Sprintf("user%d", i), opts)
		var err error
		if subs[i], err = clients[i].Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if !subs[i].Recoverable || !subs[i].Positioned || subs[i].Epoch == "" {
			t.Errorf("subscriber %d: %+v, want a recoverable, positioned stream (history on)", i, subs[i])
		}
	}
	if subs[0] != subs[1] {
		t.Fatalf("subscribers see different streams: %+v vs %+v", subs[0], subs[1])
	}

	start := time.Now()
	acks := make(chan error, n+1)
	publish := func(k int) {
		if err := clients[0].Publish(ch, json.RawMessage(fmt.Sprintf(`{"seq":%d}`, k)), func(err error) { acks <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for k := range n {
		publish(k)
	}
	for range n {
		select {
		case err := <-acks:
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
		case <-ctx.Done():
			t.Fatalf("publish replies: %v", ctx.Err())
		}
	}
	acked := time.Since(start)
	for i := range clients {
		for k := range n {
			expect(t, ctx, fmt.Sprintf("subscriber %d", i), recv[i], subs[i].Offset+uint64(k)+1, fmt.Sprintf(`{"seq":%d}`, k))
		}
	}
	t.Logf("%d publications acked in %v, delivered in order to 2 subscribers in %v", n, acked, time.Since(start))

	// Exactly once: a last publication must come right after the n others,
	// with no duplicate in between.
	publish(n)
	for i := range clients {
		expect(t, ctx, fmt.Sprintf("subscriber %d", i), recv[i], subs[i].Offset+n+1, fmt.Sprintf(`{"seq":%d}`, n))
	}
	if err := <-acks; err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func TestIntegrationRecovery(t *testing.T) {
	s := requireServer(t)
	const n, missed = 20, 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := channel(t, "")

	// Publishing needs no subscription (allow_publish_for_client).
	pub := s.dial(t, ctx, "publisher", Options{})
	acks := make(chan error, n)
	for k := range n {
		if err := pub.Publish(ch, json.RawMessage(fmt.Sprintf(`{"seq":%d}`, k)), func(err error) { acks <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if err := <-acks; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	top, err := s.dial(t, ctx, "observer", Options{}).Subscribe(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if top.Offset != n {
		t.Fatalf("stream top %d after %d publications", top.Offset, n)
	}

	opts, recv := collector(t, ch, n)
	res, err := s.dial(t, ctx, "late", opts).SubscribeSince(ctx, ch, Position{Offset: n - missed, Epoch: top.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	// On recovery the result's offset is the requested one: the recovered
	// publications follow it like live ones would.
	if !res.Recovered || res.Offset != n-missed || res.Epoch != top.Epoch {
		t.Fatalf("recovery result %+v, want recovered from offset %d in epoch %s", res, n-missed, top.Epoch)
	}
	// Recovered publications reach the handler before SubscribeSince returns.
	if len(recv) != missed {
		t.Fatalf("%d publications recovered, want %d", len(recv), missed)
	}
	for k := n - missed; k < n; k++ {
		expect(t, ctx, "recovered", recv, uint64(k)+1, fmt.Sprintf(`{"seq":%d}`, k))
	}
}

func TestIntegrationPublishForbidden(t *testing.T) {
	s := requireServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The "readonly" namespace lets clients subscribe but not publish.
	ch := channel(t, "readonly")
	c := s.dial(t, ctx, "user", Options{})
	if _, err := c.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	if err := c.Publish(ch, json.RawMessage(`{}`), func(err error) { result <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		var e *Error
		if !errors.As(err, &e) || e.Code != 103 {
			t.Fatalf("publish to %s: %v, want error 103 permission denied", ch, err)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	// The error is per command: the connection stays usable.
	if _, err := c.Subscribe(ctx, channel(t, "")); err != nil {
		t.Fatalf("subscribe after a denied publish: %v", err)
	}
}

func TestIntegrationBadTokens(t *testing.T) {
	s := requireServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.dial(t, ctx, "probe", Options{}) // fails with the start hint if the server is not there

	tests := []struct {
		name  string
		token string
		check func(error) bool
		want  string
	}{
		{"wrong secret", Token([]byte("not-the-secret"), "user", time.Now().Add(time.Hour)),
			func(err error) bool { var d *DisconnectError; return errors.As(err, &d) && d.Code == 3500 },
			"disconnect 3500 invalid token"},
		{"expired", Token(s.secret, "user", time.Now().Add(-time.Minute)),
			func(err error) bool { var e *Error; return errors.As(err, &e) && e.Code == 109 },
			"error 109 token expired"},
		// Anonymous connections are off: no credentials is a bad request.
		{"none", "",
			func(err error) bool { var d *DisconnectError; return errors.As(err, &d) && d.Code == 3501 },
			"disconnect 3501 bad request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(ctx, s.url, Options{Token: tt.token})
			if err == nil {
				c.Close()
				t.Fatalf("connected, want %s", tt.want)
			}
			if !tt.check(err) {
				t.Fatalf("Dial: %v, want %s", err, tt.want)
			}
		})
	}
}
