package gateway

import (
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestHistoryRunAndLiveEntryKeepOrder: a fill releasing a long run of
// history entries and the live consumer delivering the next entry at the
// same moment must enqueue them in seq order. (The entries were released
// under the lock but sent after it, so a live entry could slip in between:
// one device got seq 556 before 349..555.)
func TestHistoryRunAndLiveEntryKeepOrder(t *testing.T) {
	const run = 1000
	page := make([]MsgFrame, run)
	for i := range page {
		page[i] = MsgFrame{Type: "msg", ConversationID: "g:t", Seq: uint64(i + 1)}
	}
	for trial := 0; trial < 150; trial++ {
		c := testConn(4*run, 1, 1)
		c.log = slog.New(slog.DiscardHandler)
		c.convs = map[string]*convState{"g:t": {reorder: NewReorder(0, 0), filling: true}}
		c.offer("g:t", []Entry{liveEntry(run + 1)}) // held behind the gap
		var wg sync.WaitGroup
		done := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(done)
			c.offerPage("g:t", 0, page, run, false)
		}()
		go func() {
			defer wg.Done()
			for {
				c.offer("g:t", []Entry{liveEntry(run + 2)})
				select {
				case <-done:
					return
				default:
				}
			}
		}()
		wg.Wait()
		var last uint64
		n := 0
		for _, o := range c.queue {
			var f MsgFrame
			if err := json.Unmarshal(o.b, &f); err != nil {
				t.Fatal(err)
			}
			if f.Seq != last+1 {
				t.Fatalf("trial %d: seq %d enqueued after %d", trial, f.Seq, last)
			}
			last = f.Seq
			n++
		}
		if n != run+2 {
			t.Fatalf("trial %d: %d entries enqueued, want %d", trial, n, run+2)
		}
	}
}

// liveEntry is the entry at seq of g:t as the topic consumer hands it over.
func liveEntry(seq uint64) Entry {
	return Entry{Seq: seq, Payload: encode(MsgFrame{Type: "msg", ConversationID: "g:t", Seq: seq}), RoutedAt: time.Now()}
}

// TestHeldEntriesAreNotThePipelinesDelay: admission measures how far
// behind the pipeline is from live entries, so an entry the connection
// kept back (behind a gap until it was filled, or until its resume placed
// the conversation) is marked held; an entry written as it came is not.
// (Counted, a reconnect storm's catch-up read as overload: the gateways
// refused hundreds of sends after a gateway kill.)
func TestHeldEntriesAreNotThePipelinesDelay(t *testing.T) {
	c := testConn(16, 1, 1)
	c.log = slog.New(slog.DiscardHandler)
	c.convs = map[string]*convState{"g:t": {reorder: NewReorder(0, 0), filling: true}}
	c.offer("g:t", []Entry{liveEntry(2)}) // behind the gap at 1
	c.offer("g:t", []Entry{liveEntry(1)}) // fills it
	c.offer("g:t", []Entry{liveEntry(3)})
	c.convs["g:u"] = &convState{reorder: NewReorder(0, 0), unplaced: true}
	c.offer("g:u", []Entry{liveEntry(1)}) // kept until placed
	c.mu.Lock()
	c.placeLocked("g:u", 0)
	c.mu.Unlock()
	var got []bool
	for _, o := range c.queue {
		got = append(got, o.held)
	}
	if want := []bool{false, true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("held %v, want %v (g:t seqs 1, 2, 3, then g:u's 1)", got, want)
	}
}
