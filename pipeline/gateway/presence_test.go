package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// flakyPresence fails its first failures writes, then takes them; it keeps
// the online flag of every record it was asked to write.
type flakyPresence struct {
	failures int
	tried    chan struct{} // closed by the first write
	tryOnce  sync.Once

	mu       sync.Mutex
	attempts []bool
}

func newFlakyPresence(failures int) *flakyPresence {
	return &flakyPresence{failures: failures, tried: make(chan struct{})}
}

func (p *flakyPresence) Write(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		var pr imv1.Presence
		if err := imv1.Unmarshal(m.Value, &pr); err != nil {
			return err
		}
		p.attempts = append(p.attempts, pr.Online)
	}
	p.tryOnce.Do(func() { close(p.tried) })
	if len(p.attempts) <= p.failures {
		return errors.New("leader not available")
	}
	return nil
}

func (p *flakyPresence) Close() error { return nil }

func (p *flakyPresence) written() []bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bool(nil), p.attempts...)
}

func presenceConn(p presenceWriter) *conn {
	g := &Gateway{cfg: Config{GatewayID: "g"}, log: slog.New(slog.DiscardHandler), presence: p, metrics: newMetrics(nil)}
	return &conn{g: g, log: g.log, user: "u", device: "d", epoch: 7, quit: make(chan struct{}), done: make(chan struct{})}
}

// TestOnlinePresenceIsRetriedUntilItLands: a device welcomed while its
// online announcement failed (a broker's partitions moving) is announced
// again until the write lands; the fanout would never route to it here
// otherwise.
func TestOnlinePresenceIsRetriedUntilItLands(t *testing.T) {
	p := newFlakyPresence(3)
	c := presenceConn(p)
	if c.announceOnline() {
		t.Fatal("the first announcement succeeded on a writer that fails")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.retryAnnounceOnline()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the retries did not end after the write landed")
	}
	if got := p.written(); len(got) != 4 || !got[0] || !got[1] || !got[2] || !got[3] {
		t.Errorf("writes %v, want 4 online announcements (3 failed, then 1 that landed)", got)
	}
}

// TestOnlinePresenceRetryEndsWithTheConnection: the retries stop once the
// connection closes, so end's offline announcement is the last word.
func TestOnlinePresenceRetryEndsWithTheConnection(t *testing.T) {
	p := newFlakyPresence(1 << 30)
	c := presenceConn(p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.retryAnnounceOnline()
	}()
	select {
	case <-p.tried:
	case <-time.After(10 * time.Second):
		t.Fatal("no retry within 10 s")
	}
	close(c.quit)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the retries went on after the connection closed")
	}
	for _, online := range p.written() {
		if !online {
			t.Errorf("writes %v: the retry wrote an offline record", p.written())
		}
	}
}
