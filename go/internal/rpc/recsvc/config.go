// Package recsvc is what the rpc pattern's two Go servers (grpcserver over gRPC, restserver over
// REST/JSON) share: the command line, the answers built from the ranking package, the admission
// count and the Prometheus metrics. It knows nothing of either transport's wire format.
package recsvc

import (
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/patternbench/patternbench/go/internal/flagargs"
	"github.com/patternbench/patternbench/go/internal/rpc"
)

// Config is a server's command line, validated.
type Config struct {
	Listen        string
	MetricsListen string // gRPC only: where /metrics and /healthz are served over HTTP
	Items         int
	Seed          uint64
	MaxInFlight   int
}

// Defaults and bounds of the flags.
const (
	DefaultMaxInFlight = 128
	// MaxItems bounds --items: the table holds 128 bytes of embedding per item.
	MaxItems = 1_000_000
)

// ParseFlags reads the command line of the binary called name; withMetrics adds
// --metrics-listen (the gRPC server serves its metrics on a second, HTTP address). The error, if
// any, is one line naming the offending flag, for the caller to print before exiting with
// status 2.
func ParseFlags(name string, args []string, defaultListen string, withMetrics bool) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	fs.StringVar(&cfg.Listen, "listen", defaultListen, "address to serve on (host:port)")
	if withMetrics {
		fs.StringVar(&cfg.MetricsListen, "metrics-listen", "127.0.0.1:9464",
			"address of the HTTP server of /metrics and /healthz (host:port)")
	}
	fs.IntVar(&cfg.Items, "items", rpc.DefaultItems, fmt.Sprintf("items in the table, 1-%d", MaxItems))
	fs.Uint64Var(&cfg.Seed, "seed", rpc.DefaultSeed, "SplitMix64 seed of the item table")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", DefaultMaxInFlight,
		"calls served at once at most; beyond it a call is refused at once (UNAVAILABLE / 503)")
	if err := flagargs.Parse(fs, args, "usage of "+name+":"); err != nil {
		return Config{}, err
	}
	if err := CheckAddr("--listen", cfg.Listen); err != nil {
		return Config{}, err
	}
	if withMetrics {
		if err := CheckAddr("--metrics-listen", cfg.MetricsListen); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the numbers; the servers' constructors call it too.
func (c Config) Validate() error {
	switch {
	case c.Items < 1 || c.Items > MaxItems:
		return fmt.Errorf("--items: must be 1 to %d, got %d", MaxItems, c.Items)
	case c.MaxInFlight < 1:
		return fmt.Errorf("--max-in-flight: must be at least 1, got %d", c.MaxInFlight)
	}
	return nil
}

// CheckAddr refuses what cannot be a host:port, before anything starts (the edge checks its
// own addresses with it too).
func CheckAddr(flagName, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %q is not host:port", flagName, addr)
	}
	return nil
}
