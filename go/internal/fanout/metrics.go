package fanout

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DurationBuckets are the contract's bucket bounds of
// fanout_request_duration_seconds, shared with the Python implementation so
// that the two histograms can be compared bucket by bucket.
var DurationBuckets = []float64{0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2.5}

// knownCodes are the statuses the service can answer; their counters exist
// (at 0) from the start so that a scrape sees the same series every time.
var knownCodes = []int{200, 400, 404, 405, 503}

// metrics holds the service's series in a private registry, with every label
// child the hot path needs resolved once at start-up.
type metrics struct {
	handler  http.Handler
	codes    *prometheus.CounterVec
	byCode   map[int]prometheus.Counter
	duration prometheus.Histogram
	calls    [][numOutcomes]prometheus.Counter // [backend][outcome]
	hedges   []prometheus.Counter
	timeouts []prometheus.Counter
}

func newMetrics(backends []string, inFlight *atomic.Int64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanout_requests_total",
			Help: "Answers sent, by HTTP status (all paths but /healthz and /metrics).",
		}, []string{"code"}),
		byCode: map[int]prometheus.Counter{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fanout_request_duration_seconds",
			Help:    "Time from the request's arrival at the handler to its answer.",
			Buckets: DurationBuckets,
		}),
	}
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanout_backend_calls_total",
		Help: "Backend call attempts, by outcome.",
	}, []string{"backend", "outcome"})
	hedges := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanout_hedges_total",
		Help: "Hedged attempts started.",
	}, []string{"backend"})
	timeouts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanout_timeouts_total",
		Help: "Parts missing with reason timeout.",
	}, []string{"backend"})
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fanout_in_flight",
		Help: "Catalog requests in progress.",
	}, func() float64 { return float64(inFlight.Load()) })
	reg.MustRegister(m.codes, m.duration, calls, hedges, timeouts, gauge)

	for _, c := range knownCodes {
		m.byCode[c] = m.codes.WithLabelValues(strconv.Itoa(c))
	}
	m.calls = make([][numOutcomes]prometheus.Counter, len(backends))
	for i, b := range backends {
		for o := outcome(0); o < numOutcomes; o++ {
			m.calls[i][o] = calls.WithLabelValues(b, outcomeNames[o])
		}
		m.hedges = append(m.hedges, hedges.WithLabelValues(b))
		m.timeouts = append(m.timeouts, timeouts.WithLabelValues(b))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// request returns the fanout_requests_total child of status code.
func (m *metrics) request(code int) prometheus.Counter {
	if c, ok := m.byCode[code]; ok {
		return c
	}
	return m.codes.WithLabelValues(strconv.Itoa(code))
}
