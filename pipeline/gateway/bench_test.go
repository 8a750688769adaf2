//go:build failover

package gateway_test

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkDelivery measures send -> receive latency and deliveries per
// second through the whole pipeline (one process: sequencer, fanout,
// history, two gateways, and the clients) for 200 clients in 20 groups of
// 10, each client sending at the given interval. Run:
//
//	go test -tags failover -run '^$' -bench BenchmarkDelivery -benchtime 1x ./pipeline/gateway/
func BenchmarkDelivery(b *testing.B) {
	for _, interval := range []time.Duration{200 * time.Millisecond, 50 * time.Millisecond, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("every %v", interval), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				measureDelivery(b, interval)
			}
		})
	}
}

func measureDelivery(b *testing.B, interval time.Duration) {
	const groups, perGroup, msgs = 20, 10, 20
	p := startPipeline(b)
	p.startGateway("a")
	p.startGateway("b")
	var clients [][]*client
	var heapBefore, heapAfter runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)
	for g := 0; g < groups; g++ {
		var cs []*client
		for i := 0; i < perGroup; i++ {
			cs = append(cs, p.dial([]string{"a", "b"}[i%2], fmt.Sprintf("b%02d-%02d", g, i), "d", nil))
		}
		clients = append(clients, cs)
	}
	runtime.GC()
	runtime.ReadMemStats(&heapAfter)
	conv := func(g int) string { return fmt.Sprintf("g:bench-%02d", g) }
	for g := range clients {
		var others []string
		for _, c := range clients[g][1:] {
			others = append(others, c.user)
		}
		clients[g][0].control(conv(g), "create", 1, map[string]any{"op": "create_group", "user_ids": others})
	}
	for g := range clients {
		for _, c := range clients[g] {
			c.waitSeqs(conv(g), 1)
		}
	}
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	start := time.Now()
	var wg sync.WaitGroup
	for g := range clients {
		for i, c := range clients[g] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for k := 0; k < msgs; k++ {
					<-tick.C
					cmid := fmt.Sprintf("%s-%d", c.user, k)
					mu.Lock()
					sentAt[cmid] = time.Now()
					mu.Unlock()
					cs := uint64(k + 1)
					if i == 0 {
						cs++ // its create_group was client_seq 1
					}
					c.send(conv(g), cmid, cs, "bench")
				}
			}()
		}
	}
	wg.Wait()
	last := uint64(1 + perGroup*msgs)
	var lat []time.Duration
	for g := range clients {
		for _, c := range clients[g] {
			c.waitFor("all messages", func() bool { s := c.seqs[conv(g)]; return len(s) > 0 && s[len(s)-1] >= last })
			c.mu.Lock()
			for cmid, at := range c.arrivals {
				if s, ok := sentAt[cmid]; ok {
					lat = append(lat, at.Sub(s))
				}
			}
			c.mu.Unlock()
		}
	}
	took := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(.5), "p50-ms")
	b.ReportMetric(q(.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/took.Seconds(), "deliveries/s")
	b.ReportMetric(float64(groups*perGroup*msgs)/took.Seconds(), "sends/s")
	b.ReportMetric(float64(heapAfter.HeapInuse-heapBefore.HeapInuse)/float64(groups*perGroup)/1024, "heap-KiB/conn")
}
