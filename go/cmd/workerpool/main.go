// Command workerpool is the Go implementation of the worker-pool benchmark
// service: GET or POST /work runs a CPU-bound kernel on a bounded pool of
// goroutines, admitting at most workers + queue tasks (see
// systems/workerpool/README.md for the contract).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/serve"
	"github.com/patternbench/patternbench/go/internal/workerpool"
)

func main() {
	cfg, err := workerpool.ParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT, then stops accepting connections, gives
// the requests in flight at most 5 s to finish, and shuts the pool down.
func run(cfg workerpool.Config) error {
	svc, err := workerpool.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	return serve.UntilSignal([]serve.Endpoint{{Addr: cfg.Listen, Handler: svc}}, 5*time.Second)
}
