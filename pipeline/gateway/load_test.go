//go:build failover

package gateway_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// loadMember is one user's device in the load test, across reconnects.
type loadMember struct {
	user    string
	gw      string
	c       *client
	earlier map[string][]uint64 // conversation -> seqs received on closed connections
	convs   []string
	sent    []loadSend // on the current connection
}

type loadSend struct {
	conv, cmid string
	clientSeq  uint64
}

// unaccepted are the sends of the current connection it got no answer to:
// a real client sends them again, unchanged, after reconnecting.
func (m *loadMember) unaccepted() []loadSend {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	answered := map[string]bool{}
	for _, f := range m.c.frames {
		if f.Type == "accepted" || f.Type == "rejected" {
			answered[f.ClientMsgID] = true
		}
	}
	var out []loadSend
	for _, s := range m.sent {
		if !answered[s.cmid] {
			out = append(out, s)
		}
	}
	return out
}

func (m *loadMember) received(conv string) []uint64 {
	return append(append([]uint64(nil), m.earlier[conv]...), m.c.got(conv)...)
}

// TestLoadWithReconnectStorm: 200 WebSocket clients in 20 groups plus 20
// dm pairs over two gateways. Mid-load gateway a stops: every connection on
// it drops and its devices reconnect to gateway b with their positions.
// Four groups lose a member (leave) during the load. At the end every
// device has, for each conversation, exactly the seqs it may see, once
// each, in order (I4, I5). Send-to-receive latency is logged, not asserted.
func TestLoadWithReconnectStorm(t *testing.T) {
	const groups, perGroup, msgs, churn = 20, 10, 4, 4
	p := startPipeline(t)
	p.startGateway("a")
	p.startGateway("b")
	conv := func(g int) string { return fmt.Sprintf("g:load-%02d", g) }
	members := make([][]*loadMember, groups)
	for g := 0; g < groups; g++ {
		for i := 0; i < perGroup; i++ {
			gw := []string{"a", "b"}[i%2]
			u := fmt.Sprintf("u%02d-%02d", g, i)
			members[g] = append(members[g], &loadMember{user: u, gw: gw, c: p.dial(gw, u, "d", nil),
				earlier: map[string][]uint64{}, convs: []string{conv(g)}})
		}
	}
	dm := func(g int) string { return fmt.Sprintf("dm:%s:%s", members[g][0].user, members[g][1].user) }
	for g := 0; g < groups; g++ {
		members[g][0].convs = append(members[g][0].convs, dm(g))
		members[g][1].convs = append(members[g][1].convs, dm(g))
	}

	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	clientSeq := map[string]uint64{}
	next := func(m *loadMember, conv string) uint64 {
		mu.Lock()
		defer mu.Unlock()
		clientSeq[m.user+conv]++
		return clientSeq[m.user+conv]
	}
	for g := 0; g < groups; g++ {
		var others []string
		for _, m := range members[g][1:] {
			others = append(others, m.user)
		}
		m := members[g][0]
		m.c.control(conv(g), fmt.Sprintf("create-%d", g), next(m, conv(g)), map[string]any{"op": "create_group", "user_ids": others})
	}
	for g := 0; g < groups; g++ {
		for _, m := range members[g] {
			m.c.waitSeqs(conv(g), 1)
		}
	}
	leaver := func(g int) bool { return g < churn }

	load := func(from, to int, skipLeavers bool) {
		var wg sync.WaitGroup
		for g := 0; g < groups; g++ {
			for i, m := range members[g] {
				if skipLeavers && leaver(g) && i == perGroup-1 {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := from; k < to; k++ {
						for _, cv := range m.convs {
							cmid := fmt.Sprintf("%s-%s-%d", m.user, cv, k)
							cs := next(m, cv)
							mu.Lock()
							sentAt[cmid] = time.Now()
							m.sent = append(m.sent, loadSend{cv, cmid, cs})
							mu.Unlock()
							m.c.send(cv, cmid, cs, "load")
						}
						time.Sleep(20 * time.Millisecond) // load shaping: spread the sends over time
					}
				}()
			}
		}
		wg.Wait()
	}
	load(0, msgs/2, false)
	for g := 0; g < churn; g++ {
		m := members[g][perGroup-1]
		m.c.control(conv(g), m.user+"-leaves", next(m, conv(g)), map[string]any{"op": "leave"})
	}

	// The storm.
	resent := 0
	p.gateways["a"].stop()
	for g := 0; g < groups; g++ {
		for _, m := range members[g] {
			if m.gw != "a" {
				continue
			}
			m.c.waitClosed()
			retry := m.unaccepted()
			resume := map[string]uint64{}
			for _, cv := range m.convs {
				m.earlier[cv] = m.received(cv)
				if n := len(m.earlier[cv]); n > 0 {
					resume[cv] = m.earlier[cv][n-1]
				}
			}
			m.c = p.dial("b", m.user, "d", resume)
			m.gw = "b"
			m.sent = nil
			for _, r := range retry {
				m.sent = append(m.sent, r)
				m.c.send(r.conv, r.cmid, r.clientSeq, "load")
			}
			resent += len(retry)
		}
	}
	load(msgs/2, msgs, true)

	deliveries := 0
	check := func(m *loadMember, cv string, want []uint64) {
		t.Helper()
		last := want[len(want)-1]
		m.c.waitFor(fmt.Sprintf("seq %d of %s", last, cv), func() bool {
			s := m.c.seqs[cv]
			return len(s) > 0 && s[len(s)-1] >= last
		})
		got := m.received(cv)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s in %s received %v, want %v", m.user, cv, got, want)
		}
		deliveries += len(got)
	}
	for g := 0; g < groups; g++ {
		last := uint64(1 + perGroup*msgs)
		var leaveSeq uint64
		if leaver(g) {
			// The leaver sent half its messages, then left.
			last = uint64(1 + perGroup*msgs - msgs/2 + 1)
			f := members[g][0].c.waitFrame("the leave", func(f frame) bool { return f.ClientMsgID == members[g][perGroup-1].user+"-leaves" })
			leaveSeq = f.Seq
		}
		for i, m := range members[g] {
			if leaver(g) && i == perGroup-1 {
				check(m, conv(g), seqRange(1, leaveSeq)) // its leave, and nothing after
				continue
			}
			check(m, conv(g), seqRange(1, last))
		}
		for _, m := range members[g][:2] {
			check(m, dm(g), seqRange(1, 2*msgs))
		}
	}
	logLatency(t, members, sentAt)
	t.Logf("%d clients, %d in-order deliveries checked, %d sends retried after the storm", groups*perGroup, deliveries, resent)
}

// logLatency reports send -> arrival times over every message arrival on
// the clients' current connections.
func logLatency(t *testing.T, members [][]*loadMember, sentAt map[string]time.Time) {
	var lat []time.Duration
	for _, ms := range members {
		for _, m := range ms {
			m.c.mu.Lock()
			for cmid, at := range m.c.arrivals {
				if s, ok := sentAt[cmid]; ok {
					lat = append(lat, at.Sub(s))
				}
			}
			m.c.mu.Unlock()
		}
	}
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))].Round(time.Millisecond) }
	t.Logf("send -> receive latency over %d arrivals: p50 %v, p90 %v, p99 %v, max %v", len(lat), q(.5), q(.9), q(.99), lat[len(lat)-1].Round(time.Millisecond))
}
