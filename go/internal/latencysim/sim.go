package latencysim

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/patternbench/patternbench/go/internal/contract"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes counted by latencysim_requests_total.
const (
	OutcomeOK        = "ok"        // answered 200
	OutcomeError     = "error"     // injected 500
	OutcomeCancelled = "cancelled" // the caller went away during the wait
	OutcomeInvalid   = "invalid"   // malformed name or item id (400)
)

// Sim is one simulator process: the configuration, the metrics registry shared
// by all replicas, and one handler per replica.
type Sim struct {
	cfg      Config
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	metrics  http.Handler
}

// New builds a simulator from a validated configuration. Each Sim has its own
// registry, so several can live in one test binary.
func New(cfg Config) *Sim {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latencysim_requests_total",
		Help: "Backend requests answered by the simulator, by replica and outcome.",
	}, []string{"replica", "outcome"})
	reg.MustRegister(requests)
	return &Sim{
		cfg:      cfg,
		registry: reg,
		requests: requests,
		metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
}

// Handler returns the HTTP handler of replica i. Its random stream is seeded
// Seed+i and guarded by a mutex, because net/http serves requests concurrently
// and *rand.Rand is not safe for concurrent use.
func (s *Sim) Handler(i int) http.Handler {
	seed := s.cfg.Seed + uint64(i)
	label := strconv.Itoa(i)
	rep := &replica{
		cfg:       &s.cfg,
		rng:       rand.New(rand.NewPCG(seed, seed)),
		ok:        s.requests.WithLabelValues(label, OutcomeOK),
		errored:   s.requests.WithLabelValues(label, OutcomeError),
		cancelled: s.requests.WithLabelValues(label, OutcomeCancelled),
		invalid:   s.requests.WithLabelValues(label, OutcomeInvalid),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backend/{name}/{item_id}", rep.serveBackend)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such path")
	})
	return mux
}

// replica is one simulated backend replica: its own random stream and its own
// pre-resolved counters, so the hot path does no label lookups.
type replica struct {
	cfg                             *Config
	ok, errored, cancelled, invalid prometheus.Counter

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

func (rep *replica) serveBackend(w http.ResponseWriter, r *http.Request) {
	name, item := r.PathValue("name"), r.PathValue("item_id")
	if !contract.ValidID(name) || !contract.ValidID(item) {
		rep.invalid.Inc()
		WriteError(w, http.StatusBadRequest, "invalid_argument", "backend name and item id must match ^[A-Za-z0-9_-]{1,64}$")
		return
	}
	d := rep.cfg.DistFor(name)
	rep.mu.Lock()
	delay, fail := d.Sample(rep.rng)
	rep.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			rep.cancelled.Inc()
			return
		}
	}
	if fail {
		rep.errored.Inc()
		WriteError(w, http.StatusInternalServerError, "internal", "injected backend error")
		return
	}
	rep.ok.Inc()
	body := make([]byte, 0, 48+len(name)+len(item))
	body = append(body, `{"backend":"`...)
	body = append(body, name...)
	body = append(body, `","item_id":"`...)
	body = append(body, item...)
	body = append(body, `","value":`...)
	body = strconv.AppendUint(body, uint64(Value(name, item)), 10)
	body = append(body, '}')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// Value is the payload a backend returns for an item: FNV-1a-32 of
// name + "/" + item modulo 100000. It is a pure function so that any
// implementation of the fan-out service can be checked against fixed vectors.
func Value(name, item string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * prime
	}
	h = (h ^ '/') * prime
	for i := 0; i < len(item); i++ {
		h = (h ^ uint32(item[i])) * prime
	}
	return h % 100000
}

// errorEnvelope is the contract's error body.
type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes the contract's error envelope
// {"error": {"code": ..., "message": ...}} with status.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var e errorEnvelope
	e.Error.Code, e.Error.Message = code, message
	body, _ := json.Marshal(&e)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
