package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/patternbench/patternbench/go/internal/contract"
	"github.com/patternbench/patternbench/go/internal/httpjson"
	"golang.org/x/sync/errgroup"
)

// outcome is the fate of one backend call attempt; its value indexes the
// pre-resolved fanout_backend_calls_total counters.
type outcome uint8

const (
	outOK outcome = iota
	outError
	outTimeout
	outCancelled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "error", "timeout", "cancelled"}

// maxBody bounds a backend answer; anything larger is an error rather than a
// memory hazard.
const maxBody = 1 << 20

// Service is the fan-out service: configuration, the pooled backend client
// and the metrics. It is an http.Handler (see Handler).
type Service struct {
	cfg      Config
	backends []string // the first cfg.Fanout of Backends
	byName   []int    // indexes into backends, sorted by name, for "missing"
	client   *http.Client
	rr       []paddedCounter // round-robin primary replica, per backend
	lim      *limiter        // admission (admission.go)
	m        *metrics
	mux      *http.ServeMux
}

// paddedCounter keeps each backend's round-robin counter on its own cache
// line, so that concurrent requests do not bounce one line between cores.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// New builds the service. The transport keeps up to 256 idle connections per
// replica because every catalog request opens K concurrent calls; a smaller
// pool would make connection setup part of what the benchmark measures.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	backends := Backends[:cfg.Fanout]
	byName := make([]int, len(backends))
	for i := range byName {
		byName[i] = i
	}
	sort.Slice(byName, func(a, b int) bool { return backends[byName[a]] < backends[byName[b]] })

	tr := &http.Transport{
		Proxy:               nil, // backends are addressed directly, never via $HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	s := &Service{
		cfg:      cfg,
		backends: backends,
		byName:   byName,
		client: &http.Client{
			Transport: tr,
			// A redirect is a non-200 answer, hence an error, not a second call.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		rr:  make([]paddedCounter, len(backends)),
		lim: newLimiter(cfg.MaxInFlight, cfg.MaxLag),
	}
	s.m = newMetrics(backends, &s.lim.inFlight)

	mux := http.NewServeMux()
	mux.HandleFunc("/catalog/{item_id...}", s.counted(s.catalog))
	mux.HandleFunc("/catalog", s.counted(notFound)) // not a redirect to /catalog/
	mux.HandleFunc("/healthz", s.getOnly(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, healthyBody)
	}))
	mux.HandleFunc("/metrics", s.getOnly(s.m.handler.ServeHTTP))
	mux.HandleFunc("/", s.counted(notFound))
	s.mux = mux
	return s, nil
}

// ServeHTTP routes a request; Service is the whole server's handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops the admission's ticker and releases the idle backend
// connections; call it after the HTTP server has shut down.
func (s *Service) Close() {
	s.lim.close()
	s.client.CloseIdleConnections()
}

// counted wraps a handler that reports its status, so that every answer but a
// GET of /healthz or /metrics is counted in fanout_requests_total and timed in
// fanout_request_duration_seconds (the Python implementation counts the same).
func (s *Service) counted(h func(http.ResponseWriter, *http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := h(w, r)
		s.m.request(code).Inc()
		s.m.duration.Observe(time.Since(start).Seconds())
	}
}

// getOnly serves GET with h, which is neither counted nor timed (health
// checks and scrapes are not load), and answers any other method with a
// counted 405.
func (s *Service) getOnly(h http.HandlerFunc) http.HandlerFunc {
	notAllowed := s.counted(methodNotAllowed)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			notAllowed(w, r)
			return
		}
		h(w, r)
	}
}

// The fixed answers are rendered once: 503s in particular come in bursts
// exactly when the service has the least time to spare. The messages are the
// Python implementation's, so that the two answer byte for byte alike.
var (
	healthyBody    = []byte(`{"status":"ok"}`)
	badItemBody    = httpjson.Envelope("invalid_argument", "item_id must match ^[A-Za-z0-9_-]{1,64}$")
	notFoundBody   = httpjson.Envelope("not_found", "no such path")
	notAllowedBody = httpjson.Envelope("method_not_allowed", "only GET is allowed here")
	overloadedBody = httpjson.Envelope("overloaded", "too many requests in flight, retry later")
)

func notFound(w http.ResponseWriter, _ *http.Request) int {
	httpjson.Write(w, http.StatusNotFound, notFoundBody)
	return http.StatusNotFound
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) int {
	w.Header()["Allow"] = []string{http.MethodGet}
	httpjson.Write(w, http.StatusMethodNotAllowed, notAllowedBody)
	return http.StatusMethodNotAllowed
}

// catalog serves GET /catalog/{item_id}: scatter to every backend under the
// request deadline, wait for all calls (each ends by the deadline at the
// latest, since its context derives from it), then gather.
func (s *Service) catalog(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r)
	}
	item := r.PathValue("item_id")
	if !contract.ValidID(item) {
		httpjson.Write(w, http.StatusBadRequest, badItemBody)
		return http.StatusBadRequest
	}
	// Admission comes before anything is allocated for the request (a
	// context, the parts, the calls' goroutines).
	if !s.lim.admit() {
		w.Header()["Retry-After"] = httpjson.RetryAfterOne
		httpjson.Write(w, http.StatusServiceUnavailable, overloadedBody)
		return http.StatusServiceUnavailable
	}
	defer s.lim.release()

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Deadline)
	defer cancel()
	parts := make([]json.RawMessage, len(s.backends))
	reasons := make([]string, len(s.backends))
	var g errgroup.Group
	for i := range s.backends {
		g.Go(func() error {
			parts[i], reasons[i] = s.call(ctx, i, item)
			return nil
		})
	}
	_ = g.Wait() // calls report failures as reasons, never as errors

	size := 64 + len(item)
	for i, p := range parts {
		size += len(p) + len(s.backends[i]) + 48
	}
	b := make([]byte, 0, size)
	b = append(b, `{"item_id":"`...)
	b = append(b, item...) // contract.ValidID: nothing to escape
	b = append(b, `","parts":{`...)
	first := true
	for i, p := range parts {
		if p == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, s.backends[i]...)
		b = append(b, `":`...)
		b = append(b, p...)
	}
	b = append(b, `},"missing":[`...)
	degraded := false
	for _, i := range s.byName {
		if parts[i] != nil {
			continue
		}
		if degraded {
			b = append(b, ',')
		}
		degraded = true
		b = append(b, `{"backend":"`...)
		b = append(b, s.backends[i]...)
		b = append(b, `","reason":"`...)
		b = append(b, reasons[i]...)
		b = append(b, `"}`...)
	}
	if degraded {
		b = append(b, `],"degraded":true}`...)
	} else {
		b = append(b, `],"degraded":false}`...)
	}
	httpjson.Write(w, http.StatusOK, b)
	return http.StatusOK
}

// call gets backend i's part for item: the backend's JSON object, or nil and
// the reason ("timeout" or "error") it is missing. Without hedging it is one
// attempt. With hedging, a second attempt to the next replica starts when the
// first has not finished after HedgeDelay; the first success wins and the
// other attempt is cancelled, a failure waits for the other attempt if there
// is one, and a failure before the hedge fires ends the call.
func (s *Service) call(ctx context.Context, i int, item string) (json.RawMessage, string) {
	n := uint64(len(s.cfg.Replicas))
	primary := (s.rr[i].Add(1) - 1) % n
	if s.cfg.HedgeDelay <= 0 {
		return s.result(ctx, i, s.attempt(ctx, i, primary, item))
	}

	hctx, cancel := context.WithCancel(ctx)
	defer cancel() // the loser of a hedge race, if any, ends here
	done := make(chan attemptResult, 2)
	go func() { done <- s.attempt(hctx, i, primary, item) }()
	hedge := time.NewTimer(s.cfg.HedgeDelay)
	defer hedge.Stop()
	running, hedged := 1, false
	for {
		select {
		case res := <-done:
			running--
			if res.out == outOK || !hedged || running == 0 {
				return s.result(ctx, i, res)
			}
		case <-hedge.C:
			hedged = true
			running++
			s.m.hedges[i].Inc()
			go func() { done <- s.attempt(hctx, i, (primary+1)%n, item) }()
		}
	}
}

// result turns the deciding attempt into a part or a missing reason. An
// attempt cancelled by the request deadline is a timeout; one cancelled because
// the client went away is an error nobody will read, and not a timeout.
func (s *Service) result(ctx context.Context, i int, res attemptResult) (json.RawMessage, string) {
	switch {
	case res.out == outOK:
		return res.body, ""
	case res.out == outTimeout,
		res.out == outCancelled && errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.m.timeouts[i].Inc()
		return nil, "timeout"
	default:
		return nil, "error"
	}
}

type attemptResult struct {
	body json.RawMessage
	out  outcome
}

// attempt makes one GET to replica r for backend i under the call timeout and
// counts its outcome. Transport failures are classified by the contexts: the
// attempt's own timer makes a timeout; the end of the call's context (request
// deadline passed, hedge lost, client gone) makes "cancelled", the word the
// contract uses for calls cut off by the deadline.
func (s *Service) attempt(ctx context.Context, i int, r uint64, item string) attemptResult {
	actx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	body, out, err := s.fetch(actx, s.cfg.Replicas[r]+"/backend/"+s.backends[i]+"/"+item)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			out = outCancelled
		case actx.Err() != nil:
			out = outTimeout
		default:
			out = outError
		}
	}
	s.m.calls[i][out].Inc()
	return attemptResult{body, out}
}

// fetch does the HTTP exchange. A non-nil error means the transport failed
// (connection, cancellation, truncated body); a complete answer that is not a
// 200 JSON object is outError with a nil error.
func (s *Service) fetch(ctx context.Context, url string) (json.RawMessage, outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, outError, nil
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, outError, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can go back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, outError, nil
	}
	var body []byte
	if cl := resp.ContentLength; cl >= 0 && cl <= maxBody {
		body = make([]byte, cl)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, outError, err
		}
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			return nil, outError, err
		}
		if len(body) > maxBody {
			return nil, outError, nil
		}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !utf8.Valid(body) || !json.Valid(body) {
		return nil, outError, nil
	}
	return body, outOK, nil
}
