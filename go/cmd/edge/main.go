// Command edge is the edge pattern's HTTP edge: go-rest's REST/JSON calls in (POST
// /v1/recommend and POST /v1/recommend:stream), gRPC calls out to a core (rpcgrpc or the
// Python grpc_service) over one connection, with deadlines, retries, a circuit breaker, auth,
// rate limiting, request ids, JSON logs, metrics and traces (see go/internal/edge).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/patternbench/patternbench/go/internal/edge"
)

func main() {
	cfg, err := edge.ParseFlags("edge", os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Until SIGTERM or SIGINT; then the calls in flight get at most 5 s to finish.
	if err := edge.Run(ctx, cfg, edge.NewLogger(os.Stderr)); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}
