package workerpool

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DurationBuckets are the contract's bucket bounds of both histograms, shared
// with the Python implementations so that they compare bucket by bucket.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10}

// knownCodes are the statuses /work can answer; their counters exist (at 0)
// from the start so that every scrape sees the same series.
var knownCodes = []int{200, 400, 405, 503, 504}

// kernels are the task kernels, in the order of their metric children; their
// task histograms, too, exist from the start.
var kernels = []string{"spin", "hash"}

// metrics holds the contract's series in a private registry, with the label
// children the hot path needs resolved once.
type metrics struct {
	handler  http.Handler
	codes    *prometheus.CounterVec
	byCode   map[int]prometheus.Counter
	duration prometheus.Histogram
	task     map[string]prometheus.Observer // workerpool_task_duration_seconds by kernel
}

// newMetrics registers the series. workerpool_in_flight reads admitted at
// scrape time rather than being kept in step with it, so that admission stays
// one compare-and-swap.
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
		task: make(map[string]prometheus.Observer, len(kernels)),
	}
	task := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "workerpool_task_duration_seconds",
		Help:    "Kernel run time, measured in the worker around the kernel call.",
		Buckets: DurationBuckets,
	}, []string{"kernel"})
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "workerpool_in_flight",
		Help: "Tasks admitted and unfinished (running or queued).",
	}, func() float64 { return float64(admitted.Load()) })
	workersGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "workerpool_workers",
		Help: "The --workers value.",
	})
	workersGauge.Set(float64(workers))
	reg.MustRegister(m.codes, m.duration, task, inFlight, workersGauge)
	for _, c := range knownCodes {
		m.byCode[c] = m.codes.WithLabelValues(strconv.Itoa(c))
	}
	for _, k := range kernels {
		m.task[k] = task.WithLabelValues(k)
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
