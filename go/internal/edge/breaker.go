package edge

import (
	"context"
	"log/slog"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// breakerProbes is how many calls a half-open circuit lets through at once; as many successes in
// a row close it, one failure opens it again.
const breakerProbes = 3

// newBreaker is the circuit breaker of the core cfg.Core (gobreaker, two-step, so that a
// stream's outcome is reported when it ends). It opens after cfg.BreakerFailures consecutive
// failures (coreFailed), stays open cfg.BreakerOpen, then lets breakerProbes calls through.
// A call its client cancelled is not counted at all.
func newBreaker(cfg Config, logger *slog.Logger) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	failures := uint32(cfg.BreakerFailures)
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.Core,
		MaxRequests: breakerProbes,
		Timeout:     cfg.BreakerOpen,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return !coreFailed(status.Code(err))
		},
		IsExcluded: func(err error) bool { return status.Code(err) == codes.Canceled },
		OnStateChange: func(name string, from, to gobreaker.State) {
			level := slog.LevelWarn
			if to == gobreaker.StateClosed {
				level = slog.LevelInfo
			}
			logger.LogAttrs(context.Background(), level, "core circuit "+to.String(),
				slog.String("core", name), slog.String("from", from.String()), slog.String("to", to.String()))
		},
	})
}
