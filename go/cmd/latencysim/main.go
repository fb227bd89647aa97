// Command latencysim serves the simulated backends of the fan-out benchmark:
// one HTTP server per --listen address (replica i, random stream seed+i), each
// answering GET /backend/{name}/{item_id} after a delay drawn from the
// configured distribution. See systems/fanout/README.md for the contract.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/latencysim"
	"github.com/patternbench/patternbench/go/internal/serve"
)

func main() {
	cfg, err := latencysim.ParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "latencysim:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "latencysim:", err)
		os.Exit(1)
	}
}

// run serves every replica until SIGTERM or SIGINT; all are bound before any
// is announced, so the "listening on" lines mean the whole simulator is ready.
func run(cfg latencysim.Config) error {
	sim := latencysim.New(cfg)
	endpoints := make([]serve.Endpoint, len(cfg.Listen))
	for i, addr := range cfg.Listen {
		endpoints[i] = serve.Endpoint{Addr: addr, Handler: sim.Handler(i)}
	}
	return serve.UntilSignal(endpoints, 5*time.Second)
}
