package sequencer_test

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// workload is a chat workload for the raw topic: groups created first, then
// messages from several devices per member interleaved over conversations,
// membership churn, and the raw topic's faults injected on purpose: some
// sends duplicated (a producer retry) and some neighbours of one device
// swapped (a retried batch landing late).
type workload struct {
	byConv map[string][]*imv1.RawRecord // send order per conversation
	convs  []string
	keys   []string // sender/client_msg_id of every distinct send
	sends  int      // raw records including duplicates
}

func newWorkload(seed int64, groups, dms, msgsPerConv int) *workload {
	rng := rand.New(rand.NewSource(seed))
	w := &workload{byConv: map[string][]*imv1.RawRecord{}}
	users := make([]string, 40)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	now := time.Now().UnixMilli()
	id := 0
	next := func(conv, user, dev string, clientSeq uint64) *imv1.RawRecord {
		id++
		return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: fmt.Sprintf("c%06d", id),
			SenderUserId: user, SenderDeviceId: dev, ClientSeq: clientSeq, ReceivedAtMs: now, Origin: "test"}
	}
	for g := 0; g < groups; g++ {
		conv := fmt.Sprintf("g:load-%d-%d", seed, g)
		perm := rng.Perm(len(users))
		members := make([]string, 3+rng.Intn(6))
		for i := range members {
			members[i] = users[perm[i]]
		}
		c := next(conv, members[0], "admin", 0)
		c.Body = &imv1.RawRecord_Control{Control: &imv1.Control{Op: &imv1.Control_CreateGroup{
			CreateGroup: &imv1.CreateGroup{Title: conv, InitialMembers: members[1:]}}}}
		w.add(conv, c)
		w.messages(rng, conv, members, msgsPerConv, next, g%5 == 0)
	}
	for d := 0; d < dms; d++ {
		a, b := users[rng.Intn(20)], users[20+rng.Intn(20)]
		conv := fmt.Sprintf("dm:%s:%s", a, b)
		if _, dup := w.byConv[conv]; dup {
			continue
		}
		w.messages(rng, conv, []string{a, b}, msgsPerConv, next, false)
	}
	return w
}

func (w *workload) add(conv string, r *imv1.RawRecord) {
	if _, ok := w.byConv[conv]; !ok {
		w.convs = append(w.convs, conv)
	}
	w.byConv[conv] = append(w.byConv[conv], r)
	w.keys = append(w.keys, r.SenderUserId+"/"+r.ClientMsgId)
	w.sends++
}

// messages adds n messages from the members' devices (two each), with
// swaps and duplicates, and, if churn, one member leaving and rejoining.
func (w *workload) messages(rng *rand.Rand, conv string, members []string, n int,
	next func(conv, user, dev string, clientSeq uint64) *imv1.RawRecord, churn bool) {
	clientSeq := map[string]uint64{}
	var out []*imv1.RawRecord
	for i := 0; i < n; i++ {
		user := members[rng.Intn(len(members))]
		dev := fmt.Sprintf("dev%d", rng.Intn(2))
		clientSeq[user+dev]++
		r := next(conv, user, dev, clientSeq[user+dev])
		r.Body = &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte(r.ClientMsgId)}}
		out = append(out, r)
		if churn && i == n/3 {
			l := next(conv, members[1], "admin", 0)
			l.Body = &imv1.RawRecord_Control{Control: &imv1.Control{Op: &imv1.Control_Leave{Leave: &imv1.Leave{}}}}
			out = append(out, l)
		}
		if churn && i == 2*n/3 {
			j := next(conv, members[1], "admin", 0)
			j.Body = &imv1.RawRecord_Control{Control: &imv1.Control{Op: &imv1.Control_Join{Join: &imv1.Join{UserId: members[1]}}}}
			out = append(out, j)
		}
	}
	for _, r := range out {
		w.add(conv, r)
	}
	sends := w.byConv[conv]
	// Swap neighbours from the same device: the later one arrives first.
	for i := len(sends) - len(out); i+1 < len(sends); i++ {
		a, b := sends[i], sends[i+1]
		if rng.Intn(15) == 0 && a.SenderDeviceId == b.SenderDeviceId && a.SenderUserId == b.SenderUserId && a.ClientSeq > 0 {
			sends[i], sends[i+1] = b, a
		}
	}
	// Duplicate some sends a little later (not counted as distinct sends).
	for i := len(sends) - len(out); i < len(sends); i++ {
		if rng.Intn(20) == 0 {
			at := min(len(sends), i+1+rng.Intn(5))
			sends = append(sends[:at], append([]*imv1.RawRecord{sends[i]}, sends[at:]...)...)
			w.sends++
		}
	}
	w.byConv[conv] = sends
}

// send writes the workload to the raw topic from `writers` goroutines, each
// owning whole conversations (so each conversation's raw order is the
// generated one), in chunks of chunk records, pausing between chunks to
// spread the load over time. raw names the topic of each chunk (ingest
// switching generations in TestRepartition).
func (w *workload) send(t *testing.T, raw func() string, writers, chunk int, pause time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errc := make(chan error, writers)
	for g := 0; g < writers; g++ {
		go func() {
			producers := map[string]*kafkawire.Producer{}
			// Interleave this writer's conversations record by record.
			var mine [][]*imv1.RawRecord
			for i, conv := range w.convs {
				if i%writers == g {
					mine = append(mine, w.byConv[conv])
				}
			}
			var msgs []kafka.Message
			for more := true; more; {
				more = false
				for i, rs := range mine {
					if len(rs) > 0 {
						msgs = append(msgs, encodeRaw(t, rs[0]))
						mine[i], more = rs[1:], true
					}
				}
			}
			for len(msgs) > 0 {
				n := min(chunk, len(msgs))
				topic := raw()
				if producers[topic] == nil {
					producers[topic] = rawProducer(t, topic)
				}
				if err := producers[topic].Write(ctx, msgs[:n]...); err != nil {
					errc <- err
					return
				}
				msgs = msgs[n:]
				if pause > 0 {
					select {
					case <-time.After(pause):
					case <-ctx.Done():
					}
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < writers; g++ {
		if err := <-errc; err != nil {
			t.Fatalf("writing raw records: %v", err)
		}
	}
}
