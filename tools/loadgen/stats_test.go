package loadgen

import (
	"bytes"
	"image/png"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, ms(i))
	}
	var thousand []time.Duration
	for i := 1; i <= 1000; i++ {
		thousand = append(thousand, ms(i))
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{ms(7)}, 0.999, ms(7)},
		{"p50 of 1..100", hundred, 0.50, ms(50)},
		{"p90 of 1..100", hundred, 0.90, ms(90)},
		{"p99 of 1..100", hundred, 0.99, ms(99)},
		{"p99.9 of 1..100 is the max", hundred, 0.999, ms(100)},
		{"p99.9 of 1..1000", thousand, 0.999, ms(999)},
		{"p100", thousand, 1, ms(1000)},
		{"tiny q is the min", thousand, 0.0001, ms(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(q=%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestSummarizeUnsorted(t *testing.T) {
	in := []time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	s := Summarize(in)
	want := LatencySummary{Count: 5, P50ms: 3, P90ms: 5, P99ms: 5, P999ms: 5, MaxMs: 5}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 5*time.Millisecond {
		t.Error("Summarize sorted its input in place")
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram()
	for _, tt := range []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{50 * time.Microsecond, 0},
		{100 * time.Microsecond, 0},
		{time.Millisecond, 10},
		{10 * time.Millisecond, 20},
		{15 * time.Millisecond, 21}, // log10(150)=2.176 -> bucket 21
		{time.Second, 40},
		{time.Hour, 59},
	} {
		before := h.Counts[tt.bucket]
		h.Add(tt.d)
		if h.Counts[tt.bucket] != before+1 {
			t.Errorf("Add(%v) did not land in bucket %d (lower bound %v)", tt.d, tt.bucket, h.Lower(tt.bucket))
		}
	}
	if got := h.Lower(20); got != 10*time.Millisecond {
		t.Errorf("Lower(20) = %v, want 10ms", got)
	}
}

func TestHistogramPNG(t *testing.T) {
	h := NewHistogram()
	for i := 0; i < 1000; i++ {
		h.Add(time.Duration(5+i%20) * time.Millisecond)
	}
	h.Add(2 * time.Second) // a lone outlier still shows
	var buf bytes.Buffer
	if err := h.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != pngWidth || b.Dy() != pngHeight {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), pngWidth, pngHeight)
	}
	isBar := func(x, y int) bool {
		r, g, b, _ := img.At(x, y).RGBA()
		br, bg, bb, _ := colorBar.RGBA()
		return r == br && g == bg && b == bb
	}
	n := len(h.Counts)
	barColumns := 0
	for i, c := range h.Counts {
		x := plotLeft + (plotRight-plotLeft)*i/n + (plotRight-plotLeft)/n/2 // middle of bucket i
		bar := isBar(x, plotBottom-1)
		if bar != (c > 0) {
			t.Errorf("bucket %d (count %d): bar drawn = %v", i, c, bar)
		}
		if bar {
			barColumns++
		}
	}
	if barColumns == 0 {
		t.Fatal("no bars drawn")
	}
	// The fullest bucket reaches (near) the top of the plot.
	var peak, peakAt = uint64(0), 0
	for i, c := range h.Counts {
		if c > peak {
			peak, peakAt = c, i
		}
	}
	x := plotLeft + (plotRight-plotLeft)*peakAt/n + (plotRight-plotLeft)/n/2
	top := plotBottom - int(float64(plotBottom-plotTop)*float64(peak)/float64(niceCeil(peak)))
	if !isBar(x, top) || isBar(x, top-2) {
		t.Errorf("the tallest bar (bucket %d, count %d) does not end at y=%d", peakAt, peak, top)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[uint64]uint64{0: 1, 1: 1, 2: 2, 3: 5, 7: 10, 11: 20, 150: 200, 500: 500, 501: 1000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", in, got, want)
		}
	}
}
