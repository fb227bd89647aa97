package edge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
)

// NewLogger is the edge's logger: one JSON object a line on w (stderr in the command).
func NewLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// errorLogInterval is how often at most one kind of error is logged.
const errorLogInterval = time.Second

// limitedLog logs errors at most once per interval per kind, so that a failing core, which
// fails every call, does not flood the log; the next line says how many were left out.
type limitedLog struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	kinds map[string]*kindLog
}

type kindLog struct {
	last       time.Time
	suppressed int
}

func newLimitedLog(logger *slog.Logger) *limitedLog {
	return &limitedLog{logger: logger, interval: errorLogInterval, now: time.Now, kinds: map[string]*kindLog{}}
}

// Error logs msg with attrs at level ERROR under kind, unless a line of that kind was logged
// less than the interval ago.
func (l *limitedLog) Error(kind, msg string, attrs ...slog.Attr) {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		k = &kindLog{}
		l.kinds[kind] = k
	} else if now.Sub(k.last) < l.interval {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	l.mu.Unlock()
	attrs = append(attrs, slog.String("kind", kind), slog.Int("suppressed", suppressed))
	l.logger.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
}

// logRequest writes a call's line: msg "request", with what it asked, how it ended, and what
// it cost. grpc_code is "" and deadline_ms 0 when the core was never called; deadline_ms is the
// time the call had left when its first attempt started.
func (s *Server) logRequest(r *http.Request, c *call, d time.Duration) {
	grpcCode := ""
	if c.attempts > 0 {
		grpcCode = recsvc.CodeName(c.code)
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", c.status),
		slog.String("grpc_code", grpcCode),
		slog.Float64("duration_ms", millis(d)),
		slog.Float64("deadline_ms", c.deadlineMs),
		slog.String("client_id", c.clientID),
		slog.Int("attempts", c.attempts),
	}
	if c.traceID != "" {
		attrs = append(attrs, slog.String("trace_id", c.traceID))
	}
	s.logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// millis is d in milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
