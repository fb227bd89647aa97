package dbsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/patternbench/patternbench/go/internal/serve"
)

// ShutdownGrace is how long requests in flight get to finish after SIGTERM
// or SIGINT, and closing the pool after them.
const ShutdownGrace = 5 * time.Second

// Service is the server's handler and its pool.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	m      *metrics
	base   context.Context // the database calls' parent, cancelled by Close
	stop   context.CancelFunc
	health dbHealth
	// The 503 of an acquire past --acquire-timeout-ms.
	noConnBody []byte
}

// New builds the service of cfg (cfg.Listen is serve.Run's business). The
// pool connects lazily: New succeeds with the database down, and the
// requests that need it are answered 503 until it is up. log receives one
// line per outage and per unexpected database error.
func New(cfg Config, log io.Writer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	base, stop := context.WithCancel(context.Background())
	pool, err := pgxpool.NewWithConfig(base, pc)
	if err != nil {
		stop()
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	s := &Service{cfg: cfg, pool: pool, base: base, stop: stop,
		noConnBody: httpjson.Envelope("unavailable", fmt.Sprintf("no database connection free within %d ms, retry later",
			cfg.AcquireTimeout.Milliseconds()))}
	s.m = newMetrics(pool.Stat)
	s.health.logf = func(format string, args ...any) {
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n\t", "; ") // pgx's connect errors
		fmt.Fprintf(log, "dbpgx: %s\n", strings.ReplaceAll(msg, "\n", " "))
	}
	return s, nil
}

// Close cancels the database calls still running (once the server has shut
// down there should be none) and closes the pool, waiting at most
// ShutdownGrace for its connections to close.
func (s *Service) Close() {
	s.stop()
	done := make(chan struct{})
	go func() {
		s.pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ShutdownGrace):
	}
}

// Run serves cfg until ctx is done, then stops accepting connections, gives
// the requests in flight ShutdownGrace to finish and closes the pool.
func Run(ctx context.Context, cfg Config, log io.Writer) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	return serve.Run(ctx, []serve.Endpoint{{Addr: cfg.Listen, Handler: s}}, ShutdownGrace)
}

// ServeHTTP routes a request; paths are matched exactly. Every answer on the
// three routes' paths (a 400 or a 405 too) is timed in
// db_request_duration_seconds; /healthz, /metrics and a 404 for an unknown
// path are not.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, itemPrefix) && strings.IndexByte(path[len(itemPrefix):], '/') < 0:
		s.timed(routeItem, http.MethodGet, w, r, s.item)
	case path == "/items":
		s.timed(routeItems, http.MethodGet, w, r, s.items)
	case path == "/orders":
		s.timed(routeOrders, http.MethodPost, w, r, s.orders)
	case path == "/healthz" || path == "/metrics":
		if r.Method != http.MethodGet {
			w.Header()["Allow"] = []string{http.MethodGet}
			httpjson.Write(w, http.StatusMethodNotAllowed, getOnlyBody)
		} else if path == "/healthz" {
			httpjson.Write(w, http.StatusOK, healthyBody)
		} else {
			s.m.handler.ServeHTTP(w, r)
		}
	default:
		httpjson.Write(w, http.StatusNotFound, noPathBody)
	}
}

const itemPrefix = "/items/"

// timed serves r with h, which returns the status it answered, when r's
// method is method (else 405), and times it.
func (s *Service) timed(rt route, method string, w http.ResponseWriter, r *http.Request,
	h func(http.ResponseWriter, *http.Request) int) {
	start := time.Now()
	var status int
	if r.Method == method {
		status = h(w, r)
	} else {
		w.Header()["Allow"] = []string{method}
		status = fail(w, &failure{http.StatusMethodNotAllowed, "method_not_allowed",
			"method " + quote(r.Method) + " not allowed: only " + method})
	}
	s.m.observeRequest(rt, status, time.Since(start))
}

// fail answers f.
func fail(w http.ResponseWriter, f *failure) int {
	httpjson.Write(w, f.status, httpjson.Envelope(f.code, f.message))
	return f.status
}

// unavailable answers a database call's failure: 503 with Retry-After: 1,
// counted; err's text is logged, never sent.
func (s *Service) unavailable(w http.ResponseWriter, err error) int {
	s.m.unavailable.Inc()
	s.health.failed(err)
	body := unreachableBody
	if _, ok := errors.AsType[acquireTimeout](err); ok {
		body = s.noConnBody
	}
	w.Header()["Retry-After"] = httpjson.RetryAfterOne
	httpjson.Write(w, http.StatusServiceUnavailable, body)
	return http.StatusServiceUnavailable
}

// item serves GET /items/{id}.
func (s *Service) item(w http.ResponseWriter, r *http.Request) int {
	id, f := parseNamedID("id", r.URL.Path[len(itemPrefix):])
	if f != nil {
		return fail(w, f)
	}
	it, found, err := s.getItem(id)
	if err != nil {
		return s.unavailable(w, err)
	}
	s.health.ok()
	if !found {
		return fail(w, notFoundItem(id))
	}
	httpjson.Write(w, http.StatusOK, itemBody(&it))
	return http.StatusOK
}

// items serves GET /items?ids=...|count=N[&mode=any|each].
func (s *Service) items(w http.ResponseWriter, r *http.Request) int {
	q, f := parseItemsQuery(r.URL.RawQuery)
	if f != nil {
		return fail(w, f)
	}
	if q.count > 0 {
		q.ids = make([]int64, q.count)
		for i := range q.ids {
			q.ids[i] = 1 + rand.Int64N(s.cfg.Items)
		}
	}
	rows, err := s.getItems(q.ids, q.each)
	if err != nil {
		return s.unavailable(w, err)
	}
	s.health.ok()
	httpjson.Write(w, http.StatusOK, itemsBody(q.ids, rows))
	return http.StatusOK
}

// orders serves POST /orders.
func (s *Service) orders(w http.ResponseWriter, r *http.Request) int {
	body, f := readBody(w, r)
	if f != nil {
		return fail(w, f)
	}
	o, f := parseOrder(body)
	if f != nil {
		return fail(w, f)
	}
	p, f, err := s.placeOrder(&o)
	if err != nil {
		return s.unavailable(w, err)
	}
	s.health.ok()
	if f != nil {
		return fail(w, f)
	}
	httpjson.Write(w, http.StatusCreated, orderBody(p))
	return http.StatusCreated
}

// BodyTimeout is how long a POST's body may take to arrive once its head has.
const BodyTimeout = 10 * time.Second

// statusClientGone is counted for a client that went away while sending its
// body (its answer goes nowhere).
const statusClientGone = 499

var (
	errSlowBody   = invalid("body: not received within %d s", int(BodyTimeout/time.Second))
	errClientGone = &failure{statusClientGone, "cancelled", "the client went away"}
)

// readBody reads a body of at most MaxBody bytes arriving within
// BodyTimeout. A body refused is not read to its end, so its connection is
// closed after the answer. The read deadline is cleared once the body has
// arrived; after a failed read it stays, so that net/http's attempt to
// discard the rest fails at once.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *failure) {
	if r.ContentLength > MaxBody {
		w.Header()["Connection"] = []string{"close"}
		return nil, errBodyTooLarge
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(BodyTimeout)) // unsupported (a test's recorder): no bound
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		w.Header()["Connection"] = []string{"close"}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errBodyTooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errSlowBody
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
			return nil, errClientGone
		}
		return nil, invalid("body: cannot be read: %s", cut(err.Error()))
	}
	_ = rc.SetReadDeadline(time.Time{})
	return body, nil
}
