package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// usage is what a gateway process holds at one moment.
type usage struct {
	rss, heap, stack float64 // bytes
	goroutines, fds  float64
	cpuSeconds       float64 // process_cpu_seconds_total
}

// probe reads the process's RSS from /proc and the rest from /metrics.
func probe(ctx context.Context, pid int, adminAddr string) (usage, error) {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			u.rss = kb * 1024
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return u, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			u.heap = v
		case "go_memstats_stack_inuse_bytes":
			u.stack = v
		case "go_goroutines":
			u.goroutines = v
		case "process_open_fds":
			u.fds = v
		case "process_cpu_seconds_total":
			u.cpuSeconds = v
		}
	}
	return u, sc.Err()
}

// saveHeapProfile writes the gateway's heap profile, after a garbage
// collection, to path (go tool pprof -sample_index=inuse_space).
func saveHeapProfile(ctx context.Context, adminAddr, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("heap profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// selectQueries is ClickHouse's count of SELECT queries since it started
// (system.events; "Query" on versions without SelectQuery, which then
// counts inserts too).
func selectQueries(ctx context.Context, ch driver.Conn) (uint64, error) {
	rows, err := ch.Query(ctx, "SELECT event, value FROM system.events WHERE event IN ('Query', 'SelectQuery')")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	got := map[string]uint64{}
	for rows.Next() {
		var e string
		var v uint64
		if err := rows.Scan(&e, &v); err != nil {
			return 0, err
		}
		got[e] = v
	}
	if v, ok := got["SelectQuery"]; ok {
		return v, rows.Err()
	}
	return got["Query"], rows.Err()
}
