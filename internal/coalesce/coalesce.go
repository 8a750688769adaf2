// Package coalesce gathers the items that many goroutines submit into
// batches that one goroutine writes at once: a Kafka transaction over
// every partition of an instance, a ClickHouse insert over every
// partition's rows. What is costly there is the write, not its size.
package coalesce

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStopped answers items submitted after the batcher stopped.
var ErrStopped = errors.New("coalesce: stopped")

// Batcher gathers submitted items into batches. A batch takes what is
// waiting when the writer is free, then what arrives within Linger, up to
// MaxWeight. Items are written in the order submitted. Submit blocks while
// a batch is being written: the submitter's item rides the next one.
type Batcher[T any] struct {
	linger    time.Duration
	maxWeight int
	weight    func(T) int
	in        chan *item[T]
	stopped   chan struct{}

	mu  sync.Mutex
	err error
}

type item[T any] struct {
	v    T
	done chan error
}

// New builds a batcher; weight measures an item against maxWeight (nil:
// every item weighs 1). A batch always takes at least one item.
func New[T any](linger time.Duration, maxWeight int, weight func(T) int) *Batcher[T] {
	if weight == nil {
		weight = func(T) int { return 1 }
	}
	return &Batcher[T]{linger: linger, maxWeight: maxWeight, weight: weight, in: make(chan *item[T]), stopped: make(chan struct{})}
}

// Submit queues v and returns where its outcome comes: nil once the batch
// holding it was written. After Stop or a failed write it fails at once.
func (b *Batcher[T]) Submit(v T) <-chan error {
	it := &item[T]{v: v, done: make(chan error, 1)}
	select {
	case b.in <- it:
	case <-b.stopped:
		it.done <- b.Err()
	}
	return it.done
}

// Err is why the batcher stopped (nil while it runs).
func (b *Batcher[T]) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Stop stops the batcher with err (ErrStopped if nil) unless it stopped
// already: every later Submit fails with it.
func (b *Batcher[T]) Stop(err error) {
	if err == nil {
		err = ErrStopped
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
		close(b.stopped)
	}
}

// Run writes batches with write until ctx ends (nil) or a write fails:
// that error goes to every item of the batch and, since whatever follows
// them must not be written without them, stops the batcher.
func (b *Batcher[T]) Run(ctx context.Context, write func(batch []T) error) error {
	for {
		var first *item[T]
		select {
		case <-ctx.Done():
			b.Stop(ErrStopped)
			return nil
		case first = <-b.in:
		}
		items := b.gather(ctx, first)
		batch := make([]T, len(items))
		for i, it := range items {
			batch[i] = it.v
		}
		err := write(batch)
		for _, it := range items {
			it.done <- err
		}
		if err != nil {
			b.Stop(err)
			return err
		}
	}
}

func (b *Batcher[T]) gather(ctx context.Context, first *item[T]) []*item[T] {
	items := []*item[T]{first}
	w := b.weight(first.v)
	var deadline <-chan time.Time
	if b.linger > 0 {
		t := time.NewTimer(b.linger)
		defer t.Stop()
		deadline = t.C
	}
	for w < b.maxWeight {
		var it *item[T]
		select {
		case it = <-b.in:
		default:
			if deadline == nil {
				return items
			}
			select {
			case it = <-b.in:
			case <-deadline:
				return items
			case <-ctx.Done():
				return items
			}
		}
		items = append(items, it)
		w += b.weight(it.v)
	}
	return items
}
