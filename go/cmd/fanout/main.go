// Command fanout is the Go implementation of the fan-out benchmark service:
// GET /catalog/{item_id} scatters to K backends and gathers their parts under
// a deadline (see systems/fanout/README.md for the contract).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/fanout"
	"github.com/patternbench/patternbench/go/internal/serve"
)

func main() {
	cfg, err := fanout.ParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT, then stops accepting connections and
// gives the requests in flight at most 5 s to finish.
func run(cfg fanout.Config) error {
	svc, err := fanout.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	return serve.UntilSignal([]serve.Endpoint{{Addr: cfg.Listen, Handler: svc}}, 5*time.Second)
}
