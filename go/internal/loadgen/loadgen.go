package loadgen

import (
	"context"
	"runtime"
	"syscall"
	"time"
)

// Run sends the schedule of cfg and returns what was measured. Cancelling ctx
// (SIGINT, SIGTERM) stops sending; the requests in flight are still waited
// for, each bounded by cfg.Timeout, and the result says Interrupted.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wire := &wireCounter{}
	var tgt target
	if cfg.target.scheme == schemeGRPC {
		g, err := newGRPCTarget(&cfg, wire)
		if err != nil {
			return nil, err
		}
		tgt = g
	} else if cfg.HTTPClient == HTTPClientNet {
		tgt = newHTTPTarget(&cfg, wire)
	} else {
		tgt = newRawHTTPTarget(&cfg, wire)
	}
	defer tgt.close()
	clock := newRealClock()
	defer clock.close()
	defer clock.watch(ctx)()
	e := newEngine(&cfg, clock, tgt, processCPU)
	e.wire = wire
	st, tot := e.run(ctx)
	return newResult(&cfg, clock.origin.Add(cfg.Warmup), st, tot)
}

// newResult assembles the result of a run whose measured window began at
// windowStart, wall-clock time.
func newResult(cfg *Config, windowStart time.Time, st schedStats, tot totals) (*Result, error) {
	r := &Result{
		Engine:    "loadgen",
		LoadModel: "open-loop",
		Arrival:   cfg.Arrival,
		URL:       cfg.URL,
		Rate:      RateResult{Target: cfg.Rate},
		Window: WindowResult{
			StartUnix: float64(windowStart.UnixNano()) / 1e9,
			DurationS: st.window.Seconds(),
		},
		Requests:   tot.requests,
		Errors:     tot.errors,
		ErrorKinds: tot.kinds,
		Generator: GeneratorResult{
			CPUSeconds:     st.cpu.Seconds(),
			GOMAXPROCS:     runtime.GOMAXPROCS(0),
			MaxInFlight:    cfg.MaxInFlight,
			InFlightCapHit: st.capHit,
		},
		Interrupted:       st.interrupted,
		WireSentBytes:     st.wireSent,
		WireReceivedBytes: st.wireReceived,
		corrected:         tot.corrected,
		uncorrected:       tot.uncorrected,
		slip:              tot.slip,
		first:             tot.first,
		gap:               tot.gap,
	}
	if st.window > 0 {
		r.Rate.Achieved = float64(tot.sentInTime) / st.window.Seconds()
	}
	if st.cpuSpan > 0 {
		r.Generator.CPUPercent = 100 * st.cpu.Seconds() / st.cpuSpan.Seconds()
	}
	var err error
	if r.Histograms.Corrected, err = encodeHistogram(tot.corrected); err != nil {
		return nil, err
	}
	if r.Histograms.Uncorrected, err = encodeHistogram(tot.uncorrected); err != nil {
		return nil, err
	}
	if r.Histograms.Slip, err = encodeHistogram(tot.slip); err != nil {
		return nil, err
	}
	if cfg.GRPCStream {
		r.Stream = &StreamResult{Messages: tot.messages}
		if st.window > 0 {
			r.Stream.MessagesPerS = float64(tot.messages) / st.window.Seconds()
		}
		if r.Stream.Histograms.FirstMessage, err = encodeHistogram(tot.first); err != nil {
			return nil, err
		}
		if r.Stream.Histograms.Gap, err = encodeHistogram(tot.gap); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// processCPU returns the user and system CPU time this process has used,
// all threads together (getrusage RUSAGE_SELF).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
