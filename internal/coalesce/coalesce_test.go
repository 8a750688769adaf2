package coalesce

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestItemsSubmittedWhileABatchIsWrittenRideTheNextOne(t *testing.T) {
	b := New[int](0, 100, nil)
	writing, release := make(chan struct{}), make(chan struct{})
	got := make(chan []int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := true
	go b.Run(ctx, func(batch []int) error {
		got <- batch
		if first {
			first = false
			close(writing)
			<-release // hold the first write while the others queue up
		}
		return nil
	})
	r0 := b.Submit(0)
	<-writing
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-b.Submit(i) }()
	}
	close(release)
	if err := <-r0; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if b0 := <-got; len(b0) != 1 || b0[0] != 0 {
		t.Fatalf("first batch %v, want [0] alone", b0)
	}
	n := 0
	for n < 5 {
		n += len(<-got)
	}
	if n != 5 {
		t.Fatalf("%d items after the first, want 5", n)
	}
}

func TestLingerGathersItemsArrivingSoon(t *testing.T) {
	b := New[int](200*time.Millisecond, 100, nil)
	got := make(chan []int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx, func(batch []int) error { got <- batch; return nil })
	var outs []<-chan error
	for i := range 3 {
		outs = append(outs, b.Submit(i)) // each returns once taken, well within the linger
	}
	for _, o := range outs {
		<-o
	}
	if batch := <-got; len(batch) != 3 {
		t.Fatalf("first batch %v, want all three", batch)
	}
}

func TestMaxWeightSplitsBatchesKeepingOrder(t *testing.T) {
	b := New[int](time.Second, 5, func(v int) int { return v })
	got := make(chan []int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx, func(batch []int) error { got <- batch; return nil })
	var outs []<-chan error
	for _, v := range []int{3, 3, 3} {
		outs = append(outs, b.Submit(v))
	}
	for _, o := range outs {
		<-o
	}
	b1, b2 := <-got, <-got
	if len(b1) != 2 || len(b2) != 1 {
		t.Fatalf("batches %v %v: a batch closes once it reaches the weight (3+3), the third goes next", b1, b2)
	}
}

func TestAFailedWriteFailsItsBatchAndEverythingAfter(t *testing.T) {
	b := New[int](0, 100, nil)
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background(), func([]int) error { return boom }) }()
	if err := <-b.Submit(1); !errors.Is(err, boom) {
		t.Fatalf("the failed batch's item got %v", err)
	}
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("Run returned %v", err)
	}
	if err := <-b.Submit(2); !errors.Is(err, boom) {
		t.Fatalf("an item after the failure got %v, want the failure", err)
	}
}

func TestStopFailsLaterSubmits(t *testing.T) {
	b := New[int](0, 100, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, func([]int) error { return nil }) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on its context's end", err)
	}
	if err := <-b.Submit(1); !errors.Is(err, ErrStopped) {
		t.Fatalf("a submit after the stop got %v", err)
	}
}
