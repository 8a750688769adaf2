package loadgen

import (
	"context"
	"testing"
	"time"
)

func TestOpenLoopKeepsTheSchedule(t *testing.T) {
	start := time.Now()
	var dues []time.Time
	err := OpenLoop(context.Background(), start, 1000, 50*time.Millisecond, nil, func(i int, due time.Time) error {
		if i != len(dues) {
			t.Fatalf("send %d after %d sends", i, len(dues))
		}
		dues = append(dues, due)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dues) != 50 {
		t.Fatalf("%d sends in 50ms at 1000/s, want 50", len(dues))
	}
	for i, d := range dues {
		if want := start.Add(time.Duration(i) * time.Millisecond); !d.Equal(want) {
			t.Fatalf("send %d due %v, want %v", i, d.Sub(start), want.Sub(start))
		}
	}
}

func TestOpenLoopEndsAtStop(t *testing.T) {
	stop := make(chan struct{})
	n := 0
	err := OpenLoop(context.Background(), time.Now(), 100, time.Hour, stop, func(int, time.Time) error {
		if n++; n == 3 {
			close(stop)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d sends, want nil after 3", err, n)
	}
}
