package workerpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patternbench/patternbench/go/internal/httpjson"
)

// Service is the worker-pool service: a fixed pool of Workers goroutines
// reading tasks from a channel, the admission count that bounds them (see
// admit for how slots are taken and released), and the metrics. It is an
// http.Handler.
type Service struct {
	cfg                          Config
	jobs                         chan *task
	admitted                     atomic.Int64
	dropped                      atomic.Int64 // tasks dropped before they ran (for tests)
	overloadedBody, deadlineBody []byte
	do                           func(Task) string // Task.Do; tests substitute a kernel they control
	quit                         chan struct{}     // closed by Close: workers stop
	wg                           sync.WaitGroup    // the workers
	once                         sync.Once         // Close
	m                            *metrics
}

// New starts the pool's workers; Close stops them.
func New(cfg Config) (*Service, error) { return newService(cfg, Task.Do) }

// newService is New with the kernel call a parameter, set before any worker
// starts, so that tests can hold a task running or count the calls.
func newService(cfg Config, do func(Task) string) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:  cfg,
		jobs: make(chan *task, cfg.Workers+cfg.Queue),
		do:   do,
		quit: make(chan struct{}),
		overloadedBody: httpjson.Envelope("overloaded",
			fmt.Sprintf("%d tasks (workers + queue) already admitted, retry later", cfg.Workers+cfg.Queue)),
		deadlineBody: httpjson.Envelope("deadline_exceeded",
			fmt.Sprintf("the task did not finish within %d ms", cfg.Timeout.Milliseconds())),
	}
	s.m = newMetrics(cfg.Workers, &s.admitted)
	for range cfg.Workers {
		s.wg.Go(s.worker)
	}
	return s, nil
}

// ServeHTTP routes a request. Paths are matched exactly, without the
// redirects of http.ServeMux.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/work":
		start := time.Now()
		code := s.work(w, r)
		s.m.request(code).Inc()
		s.m.duration.Observe(time.Since(start).Seconds())
	case "/healthz":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r.Method, "GET")
			return
		}
		httpjson.Write(w, http.StatusOK, healthyBody)
	case "/metrics":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r.Method, "GET")
			return
		}
		s.m.handler.ServeHTTP(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such path: "+shorten(strconv.Quote(r.URL.Path)))
	}
}

// Fixed answers, rendered once (the overloaded and deadline ones in New): 503s
// come in bursts exactly when the service has the least time to spare. The
// messages follow the Python service's wording.
var (
	healthyBody  = []byte(`{"status":"ok"}`)
	shutdownBody = httpjson.Envelope("overloaded", "the service is shutting down, retry later")
)

// work serves /work and returns the status it answered. Validation comes
// before admission, so a 400 never takes a slot; the deadline runs from the
// request's arrival and derives from its context, so a client that goes away
// ends the wait exactly as the deadline does.
func (s *Service) work(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return methodNotAllowed(w, r.Method, "GET, POST")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()

	var req request
	var err error
	if r.Method == http.MethodGet {
		req, err = parseQuery(r.URL.RawQuery)
	} else {
		req, err = parseBody(w, r, s.cfg.Timeout)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) { // the body did not arrive in time
		httpjson.Write(w, http.StatusGatewayTimeout, s.deadlineBody)
		return http.StatusGatewayTimeout
	}
	if err != nil {
		return writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	}

	if !s.admit() {
		return unavailable(w, s.overloadedBody)
	}
	t := &task{Task: req.task(), ctx: ctx, done: make(chan string, 1)}
	select {
	case s.jobs <- t:
	default: // cannot happen while every queued task holds a slot
		s.admitted.Add(-1)
		return unavailable(w, s.overloadedBody)
	}

	var out string
	select {
	case out = <-t.done:
	case <-ctx.Done():
		select {
		case out = <-t.done: // finished as the deadline passed: the work is done
		default:
			httpjson.Write(w, http.StatusGatewayTimeout, s.deadlineBody)
			return http.StatusGatewayTimeout
		}
	case <-s.quit:
		return unavailable(w, shutdownBody)
	}
	httpjson.Write(w, http.StatusOK, req.answer(out))
	return http.StatusOK
}

// unavailable answers 503 with Retry-After: 1, the contract's way of telling
// a client that the refusal is momentary, and returns the status.
func unavailable(w http.ResponseWriter, body []byte) int {
	w.Header()["Retry-After"] = httpjson.RetryAfterOne
	httpjson.Write(w, http.StatusServiceUnavailable, body)
	return http.StatusServiceUnavailable
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires, and
// returns the status.
func methodNotAllowed(w http.ResponseWriter, method, allow string) int {
	w.Header()["Allow"] = []string{allow}
	return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		"method "+shorten(strconv.Quote(method))+" not allowed: only "+allow)
}

// writeError sends the contract's error envelope and returns status, so that
// work can answer and report what it answered in one statement.
func writeError(w http.ResponseWriter, status int, code, message string) int {
	httpjson.Write(w, status, httpjson.Envelope(code, message))
	return status
}
