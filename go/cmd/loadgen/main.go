// Command loadgen is patternbench's open-loop load generator: it sends HTTP or
// gRPC requests at a target arrival rate whatever the answers, and reports
// latency corrected for coordinated omission (see internal/loadgen).
//
//	loadgen --url URL --rate R --duration D [flags]
//
// Exit status: 0 done, 1 runtime failure, 2 bad flags, 130 interrupted by
// SIGINT or SIGTERM (the result JSON is still written, marked interrupted).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/patternbench/patternbench/go/internal/loadgen"
)

func main() {
	cfg, err := loadgen.ParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if res.Interrupted {
		os.Exit(130)
	}
}

// run measures until the schedule ends or the first SIGINT/SIGTERM, then
// writes the summary and the JSON. After the first signal the default
// handling is restored, so a second one kills loadgen at once, without JSON,
// for whoever cannot wait for the requests in flight.
func run(cfg loadgen.Config) (*loadgen.Result, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if !cfg.Quiet {
		fmt.Printf("loadgen: %s at %g req/s (%s arrivals) for %v after %v warm-up\n",
			cfg.URL, cfg.Rate, cfg.Arrival, cfg.Duration, cfg.Warmup)
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.JSONPath != "" {
		if err := res.WriteJSON(cfg.JSONPath); err != nil {
			return nil, err
		}
	}
	if !cfg.Quiet {
		if err := res.WriteSummary(os.Stdout); err != nil {
			return nil, err
		}
	}
	return res, nil
}
