package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminEndpoints(t *testing.T) {
	a := NewAdmin("", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ready := errors.New("partitions not restored")
	a.AddReadyCheck("restore", func(context.Context) error { return ready })
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "partitions not restored") {
		t.Errorf("/readyz while not ready = %d %q, want 503 with the reason", code, body)
	}
	ready = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, want 200 with the Go collector", code)
	}
}
