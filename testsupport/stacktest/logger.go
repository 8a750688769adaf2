package stacktest

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// maxLogBytes bounds what Logger keeps: the newest lines win.
const maxLogBytes = 1 << 20

// Logger is a logger for in-process services under test: quiet while the
// test passes, and the newest lines (Info and above) printed when it
// failed, so that a failure seen only in CI says what the services did.
func Logger(t testing.TB) *slog.Logger {
	l := &failureLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- services' log (newest %d bytes at most) ----\n%s", maxLogBytes, l.String())
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// failureLog is an io.Writer that keeps the last maxLogBytes of whole lines.
type failureLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *failureLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - maxLogBytes; over > 0 {
		cut := over
		if i := bytes.IndexByte(l.buf[over:], '\n'); i >= 0 {
			cut += i + 1
		}
		l.buf = append(l.buf[:0], l.buf[cut:]...)
	}
	return len(p), nil
}

func (l *failureLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
