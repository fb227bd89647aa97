package loadgen

import (
	"math"
	"testing"
	"time"
)

func collect(cfg *Config, end time.Duration) []time.Duration {
	a := newArrivals(cfg, end)
	var ts []time.Duration
	for {
		t, ok := a.next()
		if !ok {
			return ts
		}
		ts = append(ts, t)
	}
}

// Constant arrivals: exactly rate×duration intended times, start + i/rate.
func TestConstantArrivals(t *testing.T) {
	for _, c := range []struct {
		rate float64
		d    time.Duration
		n    int
	}{
		{1000, 10 * time.Second, 10000},
		{500, 3 * time.Second, 1500},
		{3, 2 * time.Second, 6},
		{0.5, 5 * time.Second, 3}, // 0, 2 s, 4 s
		{123456, time.Second, 123456},
	} {
		ts := collect(&Config{Rate: c.rate, Arrival: ArrivalConstant}, c.d)
		if len(ts) != c.n {
			t.Errorf("rate %v for %v: %d arrivals, want %d", c.rate, c.d, len(ts), c.n)
			continue
		}
		for i, got := range ts {
			want := time.Duration(float64(i) * 1e9 / c.rate)
			if got != want {
				t.Fatalf("rate %v: arrival %d at %v, want %v", c.rate, i, got, want)
			}
		}
	}
}

// Poisson arrivals: mean inter-arrival 1/rate, exponentially distributed (the
// standard deviation equals the mean), the same times for the same seed and
// different ones for another seed.
func TestPoissonArrivals(t *testing.T) {
	const rate = 2000.0
	cfg := &Config{Rate: rate, Arrival: ArrivalPoisson, Seed: 1}
	ts := collect(cfg, 100*time.Second) // about 200,000 arrivals
	n := float64(len(ts))
	// The count is Poisson(200,000): sd 447, so ±1% is 4.5 sd.
	if math.Abs(n-200000) > 2000 {
		t.Errorf("%v arrivals in 100 s at %v/s", n, rate)
	}
	var sum, sumSq float64
	prev := time.Duration(0)
	for _, x := range ts {
		gap := (x - prev).Seconds()
		sum += gap
		sumSq += gap * gap
		prev = x
	}
	mean := sum / n
	sd := math.Sqrt(sumSq/n - mean*mean)
	if math.Abs(mean*rate-1) > 0.01 {
		t.Errorf("mean gap %v s, want %v s", mean, 1/rate)
	}
	if math.Abs(sd/mean-1) > 0.02 {
		t.Errorf("gap sd/mean = %v, want 1 (exponential)", sd/mean)
	}

	again := collect(&Config{Rate: rate, Arrival: ArrivalPoisson, Seed: 1}, 100*time.Second)
	if len(again) != len(ts) || again[len(again)-1] != ts[len(ts)-1] || again[1000] != ts[1000] {
		t.Error("the same seed gave different arrivals")
	}
	other := collect(&Config{Rate: rate, Arrival: ArrivalPoisson, Seed: 2}, 100*time.Second)
	if other[0] == ts[0] && other[1] == ts[1] {
		t.Error("seeds 1 and 2 gave the same arrivals")
	}
}
