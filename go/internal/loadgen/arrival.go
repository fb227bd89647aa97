package loadgen

import (
	"math/rand/v2"
	"time"
)

// arrivals yields the intended send times of the schedule, as offsets from
// its start, in increasing order. It is a value owned by the scheduler
// goroutine, so it needs no locking.
type arrivals struct {
	poisson bool
	rate    float64
	i       int64         // constant: index of the next arrival
	t       float64       // poisson: the last arrival, in seconds
	rng     *rand.Rand    // poisson only
	end     time.Duration // first offset not in the schedule
}

// newArrivals returns the arrival process of cfg over [0, end). The Poisson
// stream is seeded by cfg.Seed alone, so that a seed always gives the same
// times whatever the URL.
func newArrivals(cfg *Config, end time.Duration) *arrivals {
	a := &arrivals{poisson: cfg.Arrival == ArrivalPoisson, rate: cfg.Rate, end: end}
	if a.poisson {
		a.rng = rand.New(rand.NewPCG(cfg.Seed, 0x6c6f616467656e)) // "loadgen"
	}
	return a
}

// next returns the next intended offset, or false once the schedule is over.
// Constant arrivals are computed as i/rate rather than accumulated, so that
// rounding errors do not drift over millions of requests; Poisson arrivals
// accumulate in float64 seconds, exact to well under a nanosecond for runs of
// days.
func (a *arrivals) next() (time.Duration, bool) {
	var t time.Duration
	if a.poisson {
		a.t += a.rng.ExpFloat64() / a.rate
		t = time.Duration(a.t * 1e9)
	} else {
		t = time.Duration(float64(a.i) * 1e9 / a.rate)
		a.i++
	}
	if t >= a.end {
		return 0, false
	}
	return t, true
}
