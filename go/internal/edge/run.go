package edge

import (
	"context"
	"log/slog"
	"time"

	"github.com/patternbench/patternbench/go/internal/serve"
	"go.opentelemetry.io/otel"
)

// ShutdownGrace is how long the calls in flight get to finish once the edge is told to stop,
// and then how long it takes at most to flush its spans.
const ShutdownGrace = 5 * time.Second

// Run serves cfg on the serve scaffold (its limits, time-outs and "listening on ADDR" line)
// until ctx is done; then it stops accepting connections, lets the calls in flight finish
// (ShutdownGrace at most), flushes the spans and closes the core's connection and the rate
// limiter. It fails only when the edge cannot start or serve; a failure to flush or close is
// logged.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	s, err := New(ctx, cfg, Options{Logger: logger})
	if err != nil {
		return err
	}
	if s.provider != nil { // the SDK's own errors (a collector that is down) go to the log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			s.errs.Error("otlp", "tracing failed", slog.String("error", err.Error()))
		}))
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "edge starting",
		slog.String("listen", cfg.Listen), slog.String("core", cfg.Core),
		slog.Int("max_in_flight", cfg.MaxInFlight), slog.Float64("budget_ms", millis(cfg.Budget)),
		slog.Int("retries", cfg.Retries), slog.Int("breaker_failures", cfg.BreakerFailures),
		slog.String("trace", cfg.Trace), slog.String("auth", cfg.Auth.Mode),
		slog.Float64("rate_limit_rps", cfg.RateLimit.RPS))
	stopLog := context.AfterFunc(ctx, func() {
		logger.LogAttrs(context.Background(), slog.LevelInfo, "edge shutting down",
			slog.Float64("grace_s", ShutdownGrace.Seconds()))
	})
	defer stopLog()
	serveErr := serve.Run(ctx, []serve.Endpoint{{Addr: cfg.Listen, Handler: s}}, ShutdownGrace)

	closeCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := s.Close(closeCtx); err != nil {
		logger.LogAttrs(closeCtx, slog.LevelError, "edge shutdown", slog.String("error", err.Error()))
	}
	logger.LogAttrs(closeCtx, slog.LevelInfo, "edge stopped")
	return serveErr
}
