package edge

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"
)

// The outcomes of a retry the edge wanted to make, edge_retries_total's outcome label.
type retryOutcome int

const (
	retrySent            retryOutcome = iota // made
	retryBudgetExhausted                     // the retry budget had no room
	retryNoTime                              // the backoff would have ended past the deadline
	numRetryOutcomes
)

var retryOutcomeNames = [numRetryOutcomes]string{"sent", "budget_exhausted", "deadline"}

// presetStatuses are the statuses a call commonly ends with; their counters exist (at 0) from
// the start, so that every scrape sees the same series.
var presetStatuses = []int{200, 400, 401, 403, 413, 429, StatusClientGone, 502, 503, 504}

// maxStatus bounds the statuses counted through the cache.
const maxStatus = 600

// metrics are the edge's series, in a registry of its own (the rate limiter adds its own):
//
//	edge_requests_total{route,code}         calls answered, by route and HTTP status
//	edge_request_duration_seconds{route}    from a call's arrival to its end
//	edge_upstream_duration_seconds          each attempt's call to the core
//	edge_retries_total{outcome}             retries made or forgone, and why
//	edge_breaker_state{core}                0 closed, 1 half-open, 2 open
//	edge_breaker_rejections_total{core}     attempts the open circuit refused
//	edge_in_flight                          calls admitted and not finished
//
// and the rpc contract's own series (recsvc.Metrics: rpc_requests_total{method,code},
// rpc_request_duration_seconds{method}, rpc_in_flight), as every server of that contract exports
// them: the harness reads the edge's latency where it reads theirs.
//
// The histograms have the rpc pattern's buckets (recsvc.DurationBuckets), so that the harness
// reads them as it reads rpc_request_duration_seconds.
type metrics struct {
	registry *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	counters [numRoutes][maxStatus]atomic.Pointer[prometheus.Counter]
	duration [numRoutes]prometheus.Observer
	upstream prometheus.Observer
	retries  [numRetryOutcomes]prometheus.Counter
	contract *recsvc.Metrics
}

func newMetrics(lim *recsvc.Limiter) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_requests_total",
		Help: "Calls answered by the edge, by route and HTTP status (499: the client went away).",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edge_request_duration_seconds",
		Help:    "Time from a call's arrival at the edge to its end (a stream's: its last line).",
		Buckets: recsvc.DurationBuckets,
	}, []string{"route"})
	upstream := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "edge_upstream_duration_seconds",
		Help:    "Time of each attempt's gRPC call to the core (a stream's: to its end).",
		Buckets: recsvc.DurationBuckets,
	})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_retries_total",
		Help: "Retries of idempotent calls: sent, or forgone because the retry budget was spent or the deadline too near.",
	}, []string{"outcome"})
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edge_in_flight",
		Help: "Calls admitted by the edge and not yet finished.",
	}, func() float64 { return float64(lim.InFlight()) })
	m.registry.MustRegister(m.requests, duration, upstream, retries, inFlight)
	m.contract = recsvc.NewMetricsOn(m.registry, lim)
	m.upstream = upstream
	for o := range numRetryOutcomes {
		m.retries[o] = retries.WithLabelValues(retryOutcomeNames[o])
	}
	for rt := range numRoutes {
		m.duration[rt] = duration.WithLabelValues(routes[rt].path)
		for _, st := range presetStatuses {
			m.counter(rt, st)
		}
	}
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

// observe counts a call of rt answered status after d seconds.
func (m *metrics) observe(rt routeID, status int, seconds float64) {
	m.counter(rt, status).Inc()
	m.duration[rt].Observe(seconds)
	m.contract.Observe(routes[rt].method, recsvc.CodeForStatus(status), time.Duration(seconds*float64(time.Second)))
}

// counter is the edge_requests_total child of (rt, status), resolved once.
func (m *metrics) counter(rt routeID, status int) prometheus.Counter {
	if status < 0 || status >= maxStatus {
		return m.requests.WithLabelValues(routes[rt].path, strconv.Itoa(status))
	}
	slot := &m.counters[rt][status]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(routes[rt].path, strconv.Itoa(status)) // the same child every time
	slot.Store(&c)
	return c
}

// breaker registers the series of the breaker of core and returns its rejections' counter.
func (m *metrics) breaker(core string, state func() gobreaker.State) prometheus.Counter {
	labels := prometheus.Labels{"core": core}
	rejections := prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "edge_breaker_rejections_total",
		Help:        "Attempts the core's open (or half-open and busy) circuit refused.",
		ConstLabels: labels,
	})
	m.registry.MustRegister(rejections, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "edge_breaker_state",
		Help:        "The core's circuit: 0 closed, 1 half-open, 2 open.",
		ConstLabels: labels,
	}, func() float64 { return float64(state()) }))
	return rejections
}
