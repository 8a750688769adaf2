package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seqchat/seqchat/internal/httpserve"
)

// ReadyCheck reports why the service cannot take work yet (nil: ready).
type ReadyCheck func(ctx context.Context) error

// Admin is the admin HTTP server: /metrics (Prometheus), /healthz (the
// process is alive and serving), /readyz (every registered check passes)
// and Go's profiles under /debug/pprof/ (the admin address is internal).
type Admin struct {
	Registry *prometheus.Registry

	addr   string
	log    *slog.Logger
	mu     sync.Mutex
	checks map[string]ReadyCheck
}

// NewAdmin builds the admin server with a fresh registry holding the Go
// runtime and process collectors.
func NewAdmin(addr string, log *slog.Logger) *Admin {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Admin{Registry: reg, addr: addr, log: log, checks: map[string]ReadyCheck{}}
}

// AddReadyCheck registers a named readiness check.
func (a *Admin) AddReadyCheck(name string, check ReadyCheck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = check
}

// Handler serves the admin endpoints.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func (a *Admin) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	a.mu.Lock()
	checks := make(map[string]ReadyCheck, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	var failed []string
	for name, check := range checks {
		if err := check(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}

// Run serves until ctx is cancelled, then shuts down within 5 seconds.
func (a *Admin) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", a.addr, err)
	}
	return httpserve.Serve(ctx, ln, a.Handler(), a.log.With("server", "admin"))
}
