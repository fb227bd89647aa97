// Command rpcgrpc is the Go gRPC implementation of the rpc pattern: the Recommendations service
// of proto/recommendations/v1, with the health service, server reflection, and Prometheus
// metrics over HTTP on --metrics-listen (see systems/rpc/README.md for the contract).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/grpcserver"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
)

func main() {
	cfg, err := recsvc.ParseFlags("rpcgrpc", os.Args[1:], "127.0.0.1:50051", true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcgrpc:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Until SIGTERM or SIGINT; then the calls in flight get at most 5 s to finish.
	if err := grpcserver.Run(ctx, cfg, 5*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "rpcgrpc:", err)
		os.Exit(1)
	}
}
