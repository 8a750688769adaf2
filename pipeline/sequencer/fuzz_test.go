package sequencer

import (
	"math/rand"
	"testing"
	"time"
)

// FuzzMachine drives the machine with random workloads (gaps, swaps, retries,
// membership churn, expiry) and checks I1–I4 over everything it outputs.
func FuzzMachine(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s, uint16(200))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		rng := rand.New(rand.NewSource(int64(seed)))
		opts := Options{HoldWindow: 30 * time.Millisecond, RecentPerConversation: 1 << 16, // retries stay inside the window (TestDedupWindowIsBounded covers its edge)
			MaxHeldPerConversation: 4}
		smallWindow := seed%2 == 1
		if smallWindow {
			// Most retries fall out of the window: exact dedup by client_seq
			// must answer them (only sends with a client_seq are retried,
			// as only those are deduplicated past the window).
			opts.RecentPerConversation = 1 + int(seed/2%8)
			opts.MaxOpenRangesPerDevice = 1 << 16 // merging ranges gives up exactness (TestOpenRangesAreBounded)
		}
		m := NewMachine(opts)
		check := NewChecker()
		for _, s := range randomWorkloadRetrying(rng, int(n)%2000, smallWindow) {
			apply(m, s)
			out, _ := m.Take()
			for _, r := range out {
				check.Add(r)
			}
		}
		// Flush what is still held, as a long-idle partition would.
		m.Expire(t0.Add(time.Hour))
		out, _ := m.Take()
		for _, r := range out {
			check.Add(r)
		}
		if err := check.Err(); err != nil {
			t.Fatal(err)
		}
		if m.Held() != 0 {
			t.Fatalf("%d sends still held after the window", m.Held())
		}
	})
}
