// Package serve runs the HTTP servers of a binary until it is told to stop,
// then shuts them down gracefully: the net/http ExampleServer_Shutdown shape
// that every server here shares, written once.
package serve

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
)

// Endpoint is an address to listen on and what serves it.
type Endpoint struct {
	Addr    string
	Handler http.Handler
}

// UntilSignal is Run until SIGTERM or SIGINT.
func UntilSignal(endpoints []Endpoint, grace time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, endpoints, grace)
}

// Run listens on every endpoint before announcing any, so that the
// "listening on ADDR" lines on stderr mean the whole process is ready; serves
// until ctx is done or a server fails; then stops accepting connections and
// gives requests in flight at most grace to finish, closing what is left.
//
// Every server enforces the limits of limits.go (Guard, and the envelope in
// place of net/http's own plain-text refusals) and closes a connection that
// has not sent a whole request head within HeaderTimeout or stays idle for
// IdleTimeout ($PATTERNBENCH_HEADER_TIMEOUT_S and $PATTERNBENCH_IDLE_TIMEOUT_S
// override them).
func Run(ctx context.Context, endpoints []Endpoint, grace time.Duration) error {
	headerTimeout, idleTimeout, err := timeouts()
	if err != nil {
		return err
	}
	listeners := make([]net.Listener, 0, len(endpoints))
	for _, ep := range endpoints {
		ln, err := net.Listen("tcp", ep.Addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("--listen: %w", err)
		}
		listeners = append(listeners, ln)
	}

	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for i, ln := range listeners {
		srv := newServer(endpoints[i].Handler, headerTimeout, idleTimeout)
		servers[i] = srv
		fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(guardedListener{ln}); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			_ = srv.Close() // the grace period is over: exit anyway
		}
	}
	wg.Wait()
	return serveErr
}

// newServer is the http.Server of one endpoint: h behind Guard, the time-outs,
// and a head read limit of MaxHeadReadBytes. The general OPTIONS * handler is
// off, so that Guard answers OPTIONS * as Python does.
func newServer(h http.Handler, headerTimeout, idleTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:                      Guard(h),
		ReadHeaderTimeout:            headerTimeout,
		IdleTimeout:                  idleTimeout,
		MaxHeaderBytes:               MaxHeadReadBytes - netHTTPSlop,
		DisableGeneralOptionsHandler: true,
	}
}
