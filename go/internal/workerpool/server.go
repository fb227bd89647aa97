package workerpool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The service contract's limits on one request. They are stricter than
// MaxRounds and MaxSize, which bound the in-process pool.
const (
	MaxBody        = 64 << 10 // bytes of a POST body
	ServiceRounds  = 10_000_000
	ServiceMinSize = 8
	ServiceMaxSize = 1 << 20
	MaxHashed      = 1 << 30 // rounds * size of one hash task
)

// DurationBuckets are the contract's bucket bounds of both histograms, shared
// with the Python implementations so that they compare bucket by bucket.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10}

// knownCodes are the statuses /work can answer; their counters exist (at 0)
// from the start so that every scrape sees the same series.
var knownCodes = []int{200, 400, 405, 503, 504}

// kernels are the task kernels, in the order of their metric children.
var kernels = []string{"spin", "hash"}

// task is one admitted request on its way through the pool. done is buffered
// so that a worker never waits for a handler that has already answered.
type task struct {
	Task
	ctx  context.Context // the request's: done at its deadline or when the client goes away
	done chan string
}

// Service is the worker-pool service: a fixed pool of Workers goroutines
// reading tasks from a channel, the admission count that bounds them, and the
// metrics. It is an http.Handler.
//
// Admission: admitted counts the tasks admitted and unfinished. A request
// takes a slot by raising it with compare-and-swap only while it is below
// Workers+Queue, so it never passes the bound and a refusal never blocks. A
// slot is released by the worker when the kernel has finished, or when the
// worker picks up a task whose context ended while it waited and drops it,
// never by the handler: a client that gives up frees nothing until the work
// it caused is over (for a task still queued, until a worker reaches and
// discards it). Every task in the channel holds a slot and the channel's
// capacity is Workers+Queue, so sending to it never blocks.
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
	taskHist                     map[string]prometheus.Observer // workerpool_task_duration_seconds by kernel
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
	s.taskHist = make(map[string]prometheus.Observer, len(kernels))
	for _, k := range kernels {
		s.taskHist[k] = s.m.task.WithLabelValues(k)
	}
	for range cfg.Workers {
		s.wg.Go(s.worker)
	}
	return s, nil
}

// Close stops the workers (a running kernel finishes first) and drops the
// tasks still queued; handlers still waiting answer 503. Call it after the
// HTTP server has shut down. It is safe to call more than once.
func (s *Service) Close() {
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		for {
			select {
			case <-s.jobs:
				s.dropped.Add(1)
				s.admitted.Add(-1)
			default:
				return
			}
		}
	})
}

// worker runs tasks until Close.
func (s *Service) worker() {
	for {
		select {
		case <-s.quit:
			return
		case t := <-s.jobs:
			s.run(t)
		}
	}
}

// run runs one task, or drops it if its request's deadline passed or its
// client went away while it waited. The slot is released before the output is
// handed over, so that a client sending its next request as soon as it has
// the answer finds the slot free.
func (s *Service) run(t *task) {
	if t.ctx.Err() != nil {
		s.dropped.Add(1)
		s.admitted.Add(-1)
		return
	}
	start := time.Now()
	out := s.do(t.Task)
	s.taskHist[t.Kernel].Observe(time.Since(start).Seconds())
	s.admitted.Add(-1)
	t.done <- out
}

// admit takes a slot if fewer than Workers+Queue tasks are admitted and
// unfinished. It compares before it increments, so the count (and the
// workerpool_in_flight gauge read from it) never passes the bound, not even
// for an instant during a burst of refusals.
func (s *Service) admit() bool {
	limit := int64(s.cfg.Workers + s.cfg.Queue)
	for {
		n := s.admitted.Load()
		if n >= limit {
			return false
		}
		if s.admitted.CompareAndSwap(n, n+1) {
			return true
		}
	}
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
		req, err = s.parseBody(w, r)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) { // the body did not arrive in time
		httpjson.Write(w, http.StatusGatewayTimeout, s.deadlineBody)
		return http.StatusGatewayTimeout
	}
	if err != nil {
		return writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	}

	if !s.admit() {
		w.Header()["Retry-After"] = []string{"1"}
		httpjson.Write(w, http.StatusServiceUnavailable, s.overloadedBody)
		return http.StatusServiceUnavailable
	}
	t := &task{Task: req.task(), ctx: ctx, done: make(chan string, 1)}
	select {
	case s.jobs <- t:
	default: // cannot happen while every queued task holds a slot
		s.admitted.Add(-1)
		w.Header()["Retry-After"] = []string{"1"}
		httpjson.Write(w, http.StatusServiceUnavailable, s.overloadedBody)
		return http.StatusServiceUnavailable
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
		w.Header()["Retry-After"] = []string{"1"}
		httpjson.Write(w, http.StatusServiceUnavailable, shutdownBody)
		return http.StatusServiceUnavailable
	}
	httpjson.Write(w, http.StatusOK, req.answer(out))
	return http.StatusOK
}

// request is a validated /work request. Size is kept as given: for spin it is
// only echoed.
type request struct {
	Kernel string
	Seed   uint64
	Rounds uint64
	Size   uint64
}

func (q request) task() Task {
	t := Task{Kernel: q.Kernel, Seed: q.Seed, Rounds: int(q.Rounds)}
	if q.Kernel == "hash" {
		t.Size = int(q.Size)
	}
	return t
}

// answer renders the echo of q with the kernel's output.
func (q request) answer(out string) []byte {
	b := make([]byte, 0, 128+len(out))
	b = append(b, `{"kernel":"`...)
	b = append(b, q.Kernel...) // spin or hash: nothing to escape
	b = append(b, `","seed":`...)
	b = strconv.AppendUint(b, q.Seed, 10)
	b = append(b, `,"rounds":`...)
	b = strconv.AppendUint(b, q.Rounds, 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendUint(b, q.Size, 10)
	b = append(b, `,"output":"`...)
	b = append(b, out...) // lowercase hex
	b = append(b, `"}`...)
	return b
}

// fields are the request's field names, in the order they are checked.
var fields = []string{"kernel", "seed", "rounds", "size"}

// value is one field as the client wrote it: a query parameter's decoded
// value, or a JSON value's raw text.
type value struct {
	text    string
	present bool
	json    bool
	repeats bool // a query parameter given more than once
}

// show renders v for an error message: JSON as written, a query value
// quoted; cut short if long.
func (v value) show() string {
	if v.json {
		return shorten(v.text)
	}
	return shorten(strconv.Quote(v.text))
}

// shown is how much of a client's text an error message quotes.
const shown = 64

// shorten cuts s to shown bytes (on a rune boundary) and marks the cut.
func shorten(s string) string {
	if len(s) <= shown {
		return s
	}
	i := shown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// jsonKind names the kind of the valid JSON value b, by its first byte.
func jsonKind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseQuery reads a GET's query string.
func parseQuery(raw string) (request, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return request{}, fmt.Errorf("query: %v", err)
	}
	if err := unknown(q, "query parameter"); err != nil {
		return request{}, err
	}
	get := func(name string) value {
		vs, ok := q[name]
		if !ok {
			return value{}
		}
		return value{text: vs[0], present: true, repeats: len(vs) > 1}
	}
	return validate(get)
}

// parseBody reads a POST's JSON object, at most MaxBody bytes, arriving within
// the request's deadline (os.ErrDeadlineExceeded otherwise). Keys are matched
// exactly (not case-insensitively as encoding/json does for structs) and each
// value is kept as raw JSON, so that its type can be checked and integers up
// to 2^64-1 are read exactly.
func (s *Service) parseBody(w http.ResponseWriter, r *http.Request) (request, error) {
	if r.URL.RawQuery != "" {
		return request{}, errors.New("query: a POST takes its fields from the body")
	}
	// The body must arrive within the deadline. The read deadline is cleared
	// once it has, for the connection's next request; after a failed read it
	// stays, so that net/http's attempt to discard the rest of the body fails
	// at once instead of waiting for bytes that are not coming.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.Timeout)) // unsupported: no bound but the 64 KiB
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		w.Header()["Connection"] = []string{"close"}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return request{}, fmt.Errorf("body: larger than %d bytes", MaxBody)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return request{}, err
		}
		return request{}, errors.New(shorten("body: " + err.Error()))
	}
	_ = rc.SetReadDeadline(time.Time{})
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		if !json.Valid(body) {
			var v any
			err = json.Unmarshal(body, &v) // the syntax error, the same with any target
			return request{}, errors.New("body: not JSON: " + shorten(err.Error()))
		}
		return request{}, errors.New("body: not a JSON object but " + jsonKind(body))
	}
	if obj == nil { // null decodes into a map without error
		return request{}, errors.New("body: not a JSON object but null")
	}
	if err := unknown(obj, "field"); err != nil {
		return request{}, err
	}
	return validate(func(name string) value {
		raw, ok := obj[name]
		if !ok {
			return value{}
		}
		return value{text: string(bytes.TrimSpace(raw)), present: true, json: true}
	})
}

// unknown reports the first (by name) key of m that is not a field.
func unknown[V any](m map[string]V, what string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(fields, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	return fmt.Errorf("%s: unknown %s", shorten(strconv.Quote(extra[0])), what)
}

// validate checks the fields in the contract's order, kernel, seed, rounds,
// size, and names the first invalid one.
func validate(get func(string) value) (request, error) {
	var q request
	v := get("kernel")
	switch {
	case !v.present:
		return q, errors.New("kernel: required (spin or hash)")
	case v.repeats:
		return q, errors.New("kernel: given more than once")
	}
	q.Kernel = v.text
	if v.json {
		if err := json.Unmarshal([]byte(v.text), &q.Kernel); err != nil {
			return q, fmt.Errorf("kernel: %s is not a string", v.show())
		}
	}
	if q.Kernel != "spin" && q.Kernel != "hash" {
		return q, fmt.Errorf("kernel: %s is neither spin nor hash", v.show())
	}

	var err error
	if v := get("seed"); v.present {
		if q.Seed, err = integer("seed", v, 1<<64-1); err != nil {
			return q, err
		}
	}
	v = get("rounds")
	if !v.present {
		return q, errors.New("rounds: required")
	}
	if q.Rounds, err = integer("rounds", v, ServiceRounds); err != nil {
		return q, err
	}
	v = get("size")
	switch {
	case q.Kernel == "spin":
		if v.present { // ignored, but it must still be an integer
			if q.Size, err = integer("size", v, 1<<64-1); err != nil {
				return q, err
			}
		}
	case !v.present:
		return q, errors.New("size: required for hash")
	default:
		if q.Size, err = integer("size", v, ServiceMaxSize); err != nil {
			return q, err
		}
		if q.Size < ServiceMinSize || q.Size%8 != 0 {
			return q, fmt.Errorf("size: %s is not a multiple of 8 between %d and %d", v.show(), ServiceMinSize, ServiceMaxSize)
		}
		if q.Rounds*q.Size > MaxHashed { // both bounded: no overflow
			return q, fmt.Errorf("size: %s * %d rounds is more than %d bytes to hash", v.show(), q.Rounds, MaxHashed)
		}
	}
	return q, nil
}

// integer reads v as an integer between 0 and hi: in a query decimal digits
// only, in JSON a JSON integer (not a string, float or boolean).
func integer(name string, v value, hi uint64) (uint64, error) {
	if v.repeats {
		return 0, fmt.Errorf("%s: given more than once", name)
	}
	digits := v.text
	if v.json {
		if rest, neg := strings.CutPrefix(digits, "-"); neg && isDigits(rest) {
			if n, err := strconv.ParseUint(rest, 10, 64); err == nil && n == 0 {
				return 0, nil // -0 is 0
			}
			return 0, fmt.Errorf("%s: %s is outside 0..%d", name, v.show(), hi)
		}
		if !isDigits(digits) {
			return 0, fmt.Errorf("%s: %s is not a JSON integer", name, v.show())
		}
	} else if !isDigits(digits) {
		return 0, fmt.Errorf("%s: %s is not a decimal integer", name, v.show())
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > hi {
		return 0, fmt.Errorf("%s: %s is outside 0..%d", name, v.show(), hi)
	}
	return n, nil
}

// isDigits reports whether s is one or more ASCII decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func methodNotAllowed(w http.ResponseWriter, method, allow string) int {
	w.Header()["Allow"] = []string{allow}
	return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		"method "+shorten(strconv.Quote(method))+" not allowed: only "+allow)
}

// writeError sends the contract's error envelope and returns status.
func writeError(w http.ResponseWriter, status int, code, message string) int {
	httpjson.Write(w, status, httpjson.Envelope(code, message))
	return status
}

// metrics holds the contract's series in a private registry, with the label
// children the hot path needs resolved once.
type metrics struct {
	handler  http.Handler
	codes    *prometheus.CounterVec
	byCode   map[int]prometheus.Counter
	duration prometheus.Histogram
	task     *prometheus.HistogramVec
}

func newMetrics(workers int, admitted *atomic.Int64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerpool_requests_total",
			Help: "Answers to /work, by HTTP status.",
		}, []string{"code"}),
		byCode: map[int]prometheus.Counter{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "workerpool_request_duration_seconds",
			Help:    "Time from a /work request's arrival at the handler to its answer.",
			Buckets: DurationBuckets,
		}),
		task: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workerpool_task_duration_seconds",
			Help:    "Kernel run time, measured in the worker around the kernel call.",
			Buckets: DurationBuckets,
		}, []string{"kernel"}),
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "workerpool_in_flight",
		Help: "Tasks admitted and unfinished (running or queued).",
	}, func() float64 { return float64(admitted.Load()) })
	workersGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "workerpool_workers",
		Help: "The --workers value.",
	})
	workersGauge.Set(float64(workers))
	reg.MustRegister(m.codes, m.duration, m.task, inFlight, workersGauge)
	for _, c := range knownCodes {
		m.byCode[c] = m.codes.WithLabelValues(strconv.Itoa(c))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// request returns the workerpool_requests_total child of status code.
func (m *metrics) request(code int) prometheus.Counter {
	if c, ok := m.byCode[code]; ok {
		return c
	}
	return m.codes.WithLabelValues(strconv.Itoa(code))
}
