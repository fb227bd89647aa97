// Command latencysim serves the simulated backends of the fan-out benchmark:
// one HTTP server per --listen address (replica i, random stream seed+i), each
// answering GET /backend/{name}/{item_id} after a delay drawn from the
// configured distribution. See systems/fanout/README.md for the contract.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/patternbench/patternbench/go/internal/latencysim"
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

// run binds every replica before announcing any, so that "listening on" lines
// mean the whole simulator is ready, then serves until SIGTERM or SIGINT.
func run(cfg latencysim.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	sim := latencysim.New(cfg)
	listeners := make([]net.Listener, 0, len(cfg.Listen))
	for _, addr := range cfg.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("--listen: %v", err)
		}
		listeners = append(listeners, ln)
	}

	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for i, ln := range listeners {
		srv := &http.Server{Handler: sim.Handler(i), ReadHeaderTimeout: 5 * time.Second}
		servers[i] = srv
		fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			_ = srv.Close()
		}
	}
	wg.Wait()
	return serveErr
}
