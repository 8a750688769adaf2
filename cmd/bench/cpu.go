package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// proc is a process whose CPU time is measured.
type proc struct {
	name string
	pid  int
}

// stackProcs are the processes of the stack, the services and the peer
// that run now, from the scripts' pid files under stackDir.
func stackProcs(stackDir string) []proc {
	var out []proc
	add := func(name, pidFile string) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !alive(pid) {
			return
		}
		out = append(out, proc{name, pid})
	}
	add("broker", filepath.Join(stackDir, "kafka", "kafka.pid"))
	add("clickhouse", filepath.Join(stackDir, "clickhouse", "clickhouse.pid"))
	add("centrifugo", filepath.Join(stackDir, "centrifugo", "centrifugo.pid"))
	files, _ := filepath.Glob(filepath.Join(stackDir, "services", "*.pid"))
	sort.Strings(files)
	for _, f := range files {
		add(strings.TrimSuffix(filepath.Base(f), ".pid"), f)
	}
	return out
}

func alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// cpuTicks is the user + system CPU time of pid, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may hold spaces,
// so fields are counted from the last ')'.
func parseStat(line string) (uint64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line without a command name: %.40q", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line with %d fields after the name", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat line: utime %q stime %q", f[11], f[12])
	}
	return utime + stime, nil
}

type cpuSample struct {
	at    time.Time
	ticks map[string]uint64 // by process name; absent once it exited
}

// cpuRecorder samples the CPU time of a set of processes every interval
// until Stop, so that any window inside the recording can be measured.
type cpuRecorder struct {
	procs []proc
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	samples []cpuSample
}

func startCPU(procs []proc, every time.Duration) *cpuRecorder {
	r := &cpuRecorder{procs: procs, stop: make(chan struct{}), done: make(chan struct{})}
	r.sample()
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				r.sample()
				return
			case <-t.C:
				r.sample()
			}
		}
	}()
	return r
}

func (r *cpuRecorder) sample() {
	s := cpuSample{at: time.Now(), ticks: map[string]uint64{}}
	for _, p := range r.procs {
		if t, err := cpuTicks(p.pid); err == nil {
			s.ticks[p.name] = t
		}
	}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// Stop ends the recording.
func (r *cpuRecorder) Stop() {
	close(r.stop)
	<-r.done
}

// Seconds is the CPU time each process used from the last sample at or
// before from to the first at or after to (a process sampled in neither
// bound uses its nearest samples inside the window).
func (r *cpuRecorder) Seconds(from, to time.Time) map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cpuSeconds(r.samples, from, to)
}

func cpuSeconds(samples []cpuSample, from, to time.Time) map[string]float64 {
	type bounds struct {
		start, end       uint64
		haveStart, ended bool
	}
	b := map[string]*bounds{}
	for _, s := range samples { // in time order
		for name, t := range s.ticks {
			x := b[name]
			if x == nil {
				x = &bounds{start: t}
				b[name] = x
			}
			if !s.at.After(from) {
				x.start, x.haveStart = t, true
			}
			if !x.ended {
				x.end = t
				x.ended = !s.at.Before(to)
			}
		}
	}
	out := map[string]float64{}
	for name, x := range b {
		out[name] = float64(x.end-x.start) / clockTicks
	}
	return out
}
