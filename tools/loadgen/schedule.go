package loadgen

import (
	"context"
	"time"
)

// lateThreshold: a send fired later than this after its intended time is
// counted late (the machine was too busy to keep the schedule).
const lateThreshold = 10 * time.Millisecond

// OpenLoop is the open-loop schedule: send(i, due) is called for send i at
// start + i/rate whatever the answers do (a late call keeps its intended
// time), until duration passed, stop is closed (nil: never), ctx ends or
// send returns an error.
func OpenLoop(ctx context.Context, start time.Time, rate float64, duration time.Duration, stop <-chan struct{},
	send func(i int, due time.Time) error) error {
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= duration {
			return nil
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := send(i, due); err != nil {
			return err
		}
	}
}

// Late reports whether a send due at due and fired now counts as late.
func Late(due, now time.Time) bool { return now.Sub(due) > lateThreshold }
