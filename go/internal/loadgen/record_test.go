package loadgen

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The encoded form decodes, in Go, to the same histogram: geometry, counts,
// percentiles. (Python's hdrh reads the same text; see the package doc.)
func TestHistogramRoundTrip(t *testing.T) {
	h := newHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		_ = h.RecordValue(int64(rng.ExpFloat64() * 1000)) // µs, mean 1 ms
	}
	_ = h.RecordValue(0)
	_ = h.RecordValue(histHighest)
	text, err := encodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	if text[:4] != "HISTF"[:4] {
		t.Errorf("encoding starts %q, want the base64 of the V2 compressed cookie", text[:8])
	}
	back, err := DecodeHistogram(text)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(h) {
		t.Error("decoded histogram differs")
	}
	if back.LowestTrackableValue() != histLowest || back.HighestTrackableValue() != histHighest ||
		back.SignificantFigures() != histDigits || back.TotalCount() != 100002 {
		t.Errorf("geometry %d..%d, %d digits, %d values", back.LowestTrackableValue(),
			back.HighestTrackableValue(), back.SignificantFigures(), back.TotalCount())
	}
	for _, p := range []float64{50, 90, 99, 99.9, 100} {
		if a, b := h.ValueAtPercentile(p), back.ValueAtPercentile(p); a != b {
			t.Errorf("p%v: %d before, %d after", p, a, b)
		}
	}
	if _, err := DecodeHistogram("not base64!"); err == nil {
		t.Error("garbage decoded")
	}
}

func TestMicros(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {499 * time.Nanosecond, 0}, {500 * time.Nanosecond, 1}, {1234567 * time.Nanosecond, 1235},
		{-5 * time.Nanosecond, 0}, {2 * time.Hour, histHighest},
	} {
		if got := micros(c.d); got != c.want {
			t.Errorf("micros(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

// Recording under contention: the recorder's shards (one mutex each) against
// one histogram triple per worker (no lock, but 3 × 184 KiB per worker).
// Each op is one request's three values. At 50k req/s either costs a small
// fraction of a percent of a core; see the figures in the commit that added
// this benchmark.
func BenchmarkRecord(b *testing.B) {
	const workers = 64
	b.Run("sharded-mutex", func(b *testing.B) {
		r := newRecorder(min(runtime.GOMAXPROCS(0), 16), false)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := int(next.Add(1))
			i := time.Duration(w)
			for pb.Next() {
				i += 997
				r.record(w, 0, i%time.Millisecond, i%(10*time.Millisecond), true, "", nil)
			}
		})
	})
	b.Run("one-mutex", func(b *testing.B) {
		r := newRecorder(1, false)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := int(next.Add(1))
			i := time.Duration(w)
			for pb.Next() {
				i += 997
				r.record(w, 0, i%time.Millisecond, i%(10*time.Millisecond), true, "", nil)
			}
		})
	})
	b.Run("per-worker", func(b *testing.B) {
		hs := make([][3]*hdrhistogram.Histogram, workers)
		var mu sync.Mutex
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := int(next.Add(1)) % workers
			mu.Lock()
			hs[w] = [3]*hdrhistogram.Histogram{newHistogram(), newHistogram(), newHistogram()}
			mu.Unlock()
			h := hs[w]
			i := time.Duration(w)
			for pb.Next() {
				i += 997
				_ = h[0].RecordValue(micros(i % (10 * time.Millisecond)))
				_ = h[1].RecordValue(micros(i % (10 * time.Millisecond)))
				_ = h[2].RecordValue(micros(i % time.Millisecond))
			}
		})
	})
}
