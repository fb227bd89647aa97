package workerpool

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Bounds of the command line, from the service contract.
const (
	MaxWorkers   = 256
	MaxQueue     = 100_000
	MaxTimeoutMs = 600_000
)

// Config is the service's command line, validated.
type Config struct {
	Listen  string
	Workers int           // tasks running at once
	Queue   int           // tasks admitted beyond the running ones
	Timeout time.Duration // deadline of one request
}

// DefaultWorkers is the --workers default: the CPUs usable by the process
// (GOMAXPROCS follows the cgroup CPU limit), capped at MaxWorkers so that the
// default is always a valid value.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), MaxWorkers) }

// ParseFlags reads the command line. The error, if any, is one line naming the
// offending flag, for the caller to print before exiting with status 2.
func ParseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("workerpool", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		listen    = fs.String("listen", "127.0.0.1:8080", "address to serve on")
		workers   = fs.Int("workers", DefaultWorkers(), fmt.Sprintf("tasks running at once, 1-%d", MaxWorkers))
		queue     = fs.Int("queue", 64, fmt.Sprintf("tasks admitted beyond the running ones, 0-%d", MaxQueue))
		timeoutMs = fs.Int("timeout-ms", 10_000, fmt.Sprintf("deadline of one request in ms, 1-%d", MaxTimeoutMs))
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b bytes.Buffer
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return Config{}, fmt.Errorf("usage of workerpool:\n%s", b.String())
		}
		return Config{}, err // the flag package's message names the flag
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Range-check the millisecond count before converting it, so that a huge
	// value cannot overflow into a valid-looking Duration.
	if *timeoutMs < 1 || *timeoutMs > MaxTimeoutMs {
		return Config{}, fmt.Errorf("--timeout-ms: must be between 1 and %d, got %d", MaxTimeoutMs, *timeoutMs)
	}
	cfg := Config{
		Listen:  *listen,
		Workers: *workers,
		Queue:   *queue,
		Timeout: time.Duration(*timeoutMs) * time.Millisecond,
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks every field against the contract's bounds; New calls it
// too, so that tests building a Config by hand get the same guarantees.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return fmt.Errorf("--workers: must be between 1 and %d, got %d", MaxWorkers, c.Workers)
	case c.Queue < 0 || c.Queue > MaxQueue:
		return fmt.Errorf("--queue: must be between 0 and %d, got %d", MaxQueue, c.Queue)
	case c.Timeout < time.Millisecond || c.Timeout > MaxTimeoutMs*time.Millisecond:
		return fmt.Errorf("--timeout-ms: must be between 1 and %d, got %v", MaxTimeoutMs, c.Timeout)
	}
	return nil
}
