package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCountsUserAndSystemTime(t *testing.T) {
	// A name with spaces and a parenthesis, as /proc allows.
	line := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 731 269 0 0 20 0 9 0 12345 0 0"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 731+269 {
		t.Fatalf("ticks %d, want %d", got, 731+269)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Fatal("no error for a line without a name")
	}
}

func TestOwnCPUTimeGrowsWhileBusy(t *testing.T) {
	r := startCPU([]proc{{"self", os.Getpid()}}, 10*time.Millisecond)
	from := time.Now()
	x := 0
	for time.Since(from) < 300*time.Millisecond { // spin: about 0.3 s of CPU
		x++
	}
	to := time.Now()
	r.Stop()
	got := r.Seconds(from, to)["self"]
	if got < 0.1 || got > 1 {
		t.Fatalf("measured %.2f s of CPU for a 0.3 s spin (x=%d)", got, x)
	}
}

func TestCPUSecondsTakesTheSamplesAroundTheWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	samples := []cpuSample{
		{at(0), map[string]uint64{"a": 100, "b": 0}},
		{at(1), map[string]uint64{"a": 200, "b": 50}},
		{at(2), map[string]uint64{"a": 300, "b": 100}},
		{at(3), map[string]uint64{"a": 400}}, // b exited
		{at(4), map[string]uint64{"a": 500}},
	}
	got := cpuSeconds(samples, at(1), at(3))
	if got["a"] != 2 { // 400 - 200 ticks
		t.Errorf("a: %v s, want 2", got["a"])
	}
	if got["b"] != 0.5 { // its last sample: 100 - 50 ticks
		t.Errorf("b: %v s, want 0.5", got["b"])
	}
}
