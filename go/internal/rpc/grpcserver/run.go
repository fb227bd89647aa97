package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/serve"
)

// Running is a server serving gRPC on one address and its metrics on another.
type Running struct {
	*Server
	lis, metricsLis net.Listener
	http            *http.Server
	errc            chan error // a failure of either server
}

// Start listens on cfg.Listen and cfg.MetricsListen (port 0: any free port) and serves both in
// the background until Stop.
func Start(cfg recsvc.Config) (*Running, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s.start(cfg)
}

// start is Start with the server built (tests set its hooks first).
func (s *Server) start(cfg recsvc.Config) (*Running, error) {
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	metricsLis, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	r := &Running{Server: s, lis: lis, metricsLis: metricsLis, errc: make(chan error, 2)}
	r.http = &http.Server{
		Handler:           serve.Guard(s.metricsHandler()),
		ReadHeaderTimeout: serve.HeaderTimeout,
		IdleTimeout:       serve.IdleTimeout,
		MaxHeaderBytes:    serve.MaxHeaderBytes,
	}
	go func() {
		if err := r.http.Serve(metricsLis); !errors.Is(err, http.ErrServerClosed) {
			r.errc <- fmt.Errorf("--metrics-listen: %w", err)
		}
	}()
	go func() {
		if err := s.grpc.Serve(lis); err != nil {
			r.errc <- fmt.Errorf("--listen: %w", err)
		}
	}()
	return r, nil
}

// Addr is the gRPC address; MetricsAddr the HTTP one.
func (r *Running) Addr() string        { return r.lis.Addr().String() }
func (r *Running) MetricsAddr() string { return r.metricsLis.Addr().String() }

// Stop shuts down gracefully: the health service answers NOT_SERVING, the listener closes (a
// new connection is refused: UNAVAILABLE at the client), connections get GOAWAY (a new call on
// one is refused: UNAVAILABLE), and the calls in flight get up to grace to finish before the
// rest are cut off (Stop: UNAVAILABLE at their clients). The metrics server stops last, so a
// final scrape sees the calls that finished.
func (r *Running) Stop(grace time.Duration) {
	r.health.Shutdown()
	done := make(chan struct{})
	go func() {
		r.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		r.grpc.Stop() // closes every connection; a handler still running ends on its next Send
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.http.Shutdown(ctx); err != nil {
		_ = r.http.Close()
	}
}

// Run serves cfg until ctx is done or a server fails, announcing both addresses on stderr
// ("listening on ADDR", gRPC first) once both listen, then stops with grace.
func Run(ctx context.Context, cfg recsvc.Config, grace time.Duration) error {
	r, err := Start(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "listening on %s\nlistening on %s\n", r.Addr(), r.MetricsAddr())
	select {
	case <-ctx.Done():
	case err = <-r.errc:
	}
	r.Stop(grace)
	return err
}

// The metrics server's fixed answers, in the contracts' envelope.
var (
	healthyBody    = []byte(`{"status":"ok"}`)
	notFoundBody   = httpjson.Envelope("not_found", "no such path")
	notAllowedBody = httpjson.Envelope("method_not_allowed", "only GET is allowed here")
)

// metricsHandler serves GET /metrics and GET /healthz.
func (s *Server) metricsHandler() http.Handler {
	metrics := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics", "/healthz":
			if r.Method != http.MethodGet {
				w.Header()["Allow"] = []string{http.MethodGet}
				httpjson.Write(w, http.StatusMethodNotAllowed, notAllowedBody)
			} else if r.URL.Path == "/metrics" {
				metrics.ServeHTTP(w, r)
			} else {
				httpjson.Write(w, http.StatusOK, healthyBody)
			}
		default:
			httpjson.Write(w, http.StatusNotFound, notFoundBody)
		}
	})
}
