// Command rpcrest is the Go REST/JSON implementation of the rpc pattern: the Recommendations
// service of proto/recommendations/v1 as POST /v1/recommend and POST /v1/recommend:stream in
// protojson's mapping, with GET /healthz and GET /metrics (see systems/rpc/README.md for the
// contract).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"github.com/patternbench/patternbench/go/internal/serve"
)

func main() {
	cfg, err := recsvc.ParseFlags("rpcrest", os.Args[1:], "127.0.0.1:8080", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcrest:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "rpcrest:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT, then stops accepting connections and gives the calls in
// flight at most 5 s to finish.
func run(cfg recsvc.Config) error {
	svc, err := restserver.New(cfg)
	if err != nil {
		return err
	}
	return serve.UntilSignal([]serve.Endpoint{{Addr: cfg.Listen, Handler: svc}}, 5*time.Second)
}
