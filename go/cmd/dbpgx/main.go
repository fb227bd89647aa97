// Command dbpgx is the db pattern's go-pgx service: net/http and a pgxpool in
// front of PostgreSQL, answering GET /items/{id}, GET /items, POST /orders,
// GET /healthz and GET /metrics (see systems/db/README.md for the contract and
// go/internal/dbsvc for the service).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/patternbench/patternbench/go/internal/dbsvc"
)

func main() {
	cfg, err := dbsvc.ParseFlags("dbpgx", os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbpgx:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Until SIGTERM or SIGINT; then the requests in flight get at most 5 s to
	// finish, and the pool is closed.
	if err := dbsvc.Run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dbpgx:", err)
		os.Exit(1)
	}
}
