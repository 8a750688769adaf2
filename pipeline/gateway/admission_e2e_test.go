package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seqchat/seqchat/pipeline/gateway"
	"github.com/seqchat/seqchat/pipeline/sequencer"
)

// TestOverloadedGatewayRefusesWithARetryHint overloads a real pipeline
// (a sequencer committing one record per transaction; devices writing
// their sends without waiting for answers): admission refuses sends with
// a non-fatal unavailable and a retry_after_ms hint. Each device resends
// what was refused, in order, after the hint, until every send is
// accepted; each then has its conversation's seqs 1..n, each once: a
// refused attempt took no seq.
func TestOverloadedGatewayRefusesWithARetryHint(t *testing.T) {
	p := startPipeline(t, func(c *sequencer.Config) { c.BatchMaxRecords, c.BatchMaxWait, c.TransactionLinger = 1, -1, -1 })
	p.startGateway("a", func(c *gateway.Config) {
		c.OverloadDelay = 200 * time.Millisecond
		c.SendsPerSecond, c.SendBurst = 1e6, 1e6 // admission's refusals only
	})
	const devices, sends = 3, 300
	type device struct {
		c       *client
		conv    string
		pending []uint64 // client_seqs to write, in order
	}
	ds := make([]*device, devices)
	for i := range ds {
		d := &device{c: p.dial("a", fmt.Sprintf("olga%d", i), "d", nil), conv: fmt.Sprintf("g:busy%d", i)}
		d.c.control(d.conv, "create", 1, map[string]any{"op": "create_group"})
		d.c.waitSeqs(d.conv, 1)
		for s := uint64(2); s <= sends+1; s++ {
			d.pending = append(d.pending, s)
		}
		ds[i] = d
	}
	hinted := 0
	deadline := time.Now().Add(2 * time.Minute)
	for round := 1; ; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("sends still refused after %d rounds", round-1)
		}
		marks := make([]int, len(ds))
		for i, d := range ds {
			marks[i] = d.c.frameCount()
			for _, s := range d.pending {
				d.c.send(d.conv, fmt.Sprintf("m%d", s), s, "hello")
			}
		}
		wait, left := time.Duration(0), 0
		for i, d := range ds {
			var refused []uint64
			for _, s := range d.pending {
				f := d.c.answer(fmt.Sprintf("m%d", s), marks[i])
				if f.Type == "accepted" {
					continue
				}
				if f.Code != gateway.CodeUnavailable || f.Fatal {
					t.Fatalf("m%d answered %+v, want accepted or a non-fatal unavailable", s, f)
				}
				if f.RetryAfterMs > 0 {
					hinted++
					wait = max(wait, time.Duration(f.RetryAfterMs)*time.Millisecond)
				}
				refused = append(refused, s)
			}
			d.pending = refused
			left += len(refused)
		}
		if left == 0 {
			t.Logf("every send accepted after %d rounds, %d refusals with a hint", round, hinted)
			break
		}
		time.Sleep(max(wait, 50*time.Millisecond)) // the protocol's hint, not synchronisation
	}
	if hinted == 0 {
		t.Fatal("no send refused with a retry hint: admission did not act on an overloaded pipeline")
	}
	for _, d := range ds {
		d.c.waitSeqs(d.conv, sends+1)
		got := d.c.got(d.conv)
		if len(got) != sends+1 {
			t.Fatalf("%s: %d entries, want %d: a refused attempt took a seq or was delivered", d.conv, len(got), sends+1)
		}
		for i, seq := range got {
			if seq != uint64(i+1) {
				t.Fatalf("%s: seqs %v, want 1..%d each once", d.conv, got, sends+1)
			}
		}
	}
}
