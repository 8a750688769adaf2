package loadgen

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strconv"
	"time"
)

// PNG size and plot area.
const (
	pngWidth, pngHeight = 900, 420
	plotLeft, plotRight = 70, pngWidth - 20
	plotTop, plotBottom = 20, pngHeight - 50
)

var (
	colorBackground = color.RGBA{255, 255, 255, 255}
	colorAxis       = color.RGBA{0, 0, 0, 255}
	colorGrid       = color.RGBA{225, 225, 225, 255}
	colorBar        = color.RGBA{52, 101, 164, 255}
)

// WritePNG draws h as a bar chart: log-scale latency on x (a long tick and
// a label per decade, a short tick per bucket), deliveries on y (linear,
// five labelled ticks), and writes it as PNG.
func (h *Histogram) WritePNG(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, pngWidth, pngHeight))
	fill(img, img.Bounds(), colorBackground)
	var peak uint64
	for _, c := range h.Counts {
		peak = max(peak, c)
	}
	yMax := niceCeil(peak)
	plotH := plotBottom - plotTop
	for k := 0; k <= 4; k++ {
		y := plotBottom - plotH*k/4
		fill(img, image.Rect(plotLeft, y, plotRight, y+1), colorGrid)
		fill(img, image.Rect(plotLeft-6, y, plotLeft, y+1), colorAxis)
		label := strconv.FormatUint(yMax*uint64(k)/4, 10)
		drawText(img, plotLeft-10-textWidth(label), y-5, label)
	}
	n := len(h.Counts)
	x := func(i int) int { return plotLeft + (plotRight-plotLeft)*i/n }
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		top := plotBottom - int(float64(plotH)*float64(c)/float64(yMax))
		top = min(top, plotBottom-1) // a bucket with any count shows
		fill(img, image.Rect(x(i)+1, top, x(i+1)-1, plotBottom), colorBar)
	}
	fill(img, image.Rect(plotLeft, plotTop, plotLeft+1, plotBottom+1), colorAxis)
	fill(img, image.Rect(plotLeft, plotBottom, plotRight, plotBottom+1), colorAxis)
	for i := 0; i <= n; i++ {
		tick := 4
		if h.PerDecade > 0 && i%h.PerDecade == 0 {
			tick = 10
			label := durationLabel(h.Lower(i))
			drawText(img, x(i)-textWidth(label)/2, plotBottom+14, label)
		}
		fill(img, image.Rect(x(i), plotBottom, x(i)+1, plotBottom+tick), colorAxis)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("encode histogram png: %w", err)
	}
	return nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(n uint64) uint64 {
	for p := uint64(1); ; p *= 10 {
		for _, m := range []uint64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// durationLabel spells a decade bound: 100us, 1ms, 10s.
func durationLabel(d time.Duration) string {
	d = d.Round(time.Microsecond)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dus", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

// glyphs is a 3x5 pixel font for the characters the labels use; each row
// is three bits, high bit left.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, 'u': {0, 5, 5, 5, 7}, 'm': {0, 7, 7, 5, 5},
	's': {0, 3, 6, 3, 6},
}

const glyphScale = 2

func textWidth(s string) int { return len(s) * 4 * glyphScale }

func drawText(img *image.RGBA, x, y int, s string) {
	for _, r := range s {
		g := glyphs[r]
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) != 0 {
					px, py := x+col*glyphScale, y+row*glyphScale
					fill(img, image.Rect(px, py, px+glyphScale, py+glyphScale), colorAxis)
				}
			}
		}
		x += 4 * glyphScale
	}
}
