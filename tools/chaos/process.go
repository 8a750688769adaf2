package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Service is one service process the harness runs, kills and restarts.
type Service struct {
	Name      string
	Bin       string
	Args      []string
	Env       []string // added to the harness's own environment
	AdminAddr string   // serves /readyz
	LogPath   string   // stdout and stderr, appended across restarts

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process exits
	killed  bool          // the harness killed the current process
	onCrash func(*Service, error)
}

// Start starts the process (a new one after a kill).
func (s *Service) Start() error {
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", s.Name, err)
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C of the harness does not reach it,
	// the harness stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", s.Name, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.killed = cmd, exited, false
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		planned, onCrash := s.killed, s.onCrash
		s.mu.Unlock()
		// Reported before exited closes: once Kill returns, an unplanned
		// exit has been reported.
		if !planned && onCrash != nil {
			onCrash(s, err)
		}
		close(exited)
	}()
	return nil
}

// Pid is the current process's id.
func (s *Service) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Service) Kill() {
	s.signal(syscall.SIGKILL)
}

// Stop sends SIGTERM, waits up to timeout, then kills.
func (s *Service) Stop(timeout time.Duration) error {
	exited := s.signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		s.Kill()
		return fmt.Errorf("%s: no exit within %v of SIGTERM; killed", s.Name, timeout)
	}
}

// signal marks the exit as planned, sends sig and, for SIGKILL, waits for
// the exit; it returns the exit channel.
func (s *Service) signal(sig syscall.Signal) <-chan struct{} {
	s.mu.Lock()
	s.killed = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return closedChan
	}
	cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
	}
	return exited
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Ready asks the service's /readyz.
func (s *Service) Ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.AdminAddr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Metric reads a counter or gauge of the service's /metrics, summed over
// its series (a service running an instance per generation labels each
// one's: generation="1", ...); -1 if it is not there or the service does
// not answer.
func (s *Service) Metric(name string) float64 {
	m, err := scrapeSamples(context.Background(), s.AdminAddr)
	if err != nil {
		return -1
	}
	sum, found := 0.0, false
	for key, v := range m {
		if key == name || strings.HasPrefix(key, name+"{") {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// WaitReady polls /readyz until it answers 200, the process exits, or
// ctx ends.
func (s *Service) WaitReady(ctx context.Context) error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.Ready(ctx) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (log: %s)", s.Name, s.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", s.Name, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// errNotReady is the cause given to WaitReady's context by its callers'
// timeouts.
var errNotReady = errors.New("timed out")
