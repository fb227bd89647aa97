package recsvc

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Method is an RPC of the Recommendations service, the value of the metrics' method label
// over both transports.
type Method int

const (
	Recommend Method = iota
	StreamRecommendations
	numMethods
)

var methodNames = [numMethods]string{"Recommend", "StreamRecommendations"}

func (m Method) String() string { return methodNames[m] }

// DurationBuckets are the bucket bounds of rpc_request_duration_seconds (the workerpool
// pattern's, 100 µs to 10 s), shared with the Python implementations so that the histograms
// compare bucket by bucket.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10}

// codeNames are the gRPC codes' canonical names (google.rpc.Code), the code label's values;
// codes.Code's String gives CamelCase names instead.
var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// CodeName is c's canonical name ("INVALID_ARGUMENT"); UNKNOWN for a code outside 0..16.
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "UNKNOWN"
}

// CodeForStatus maps a REST answer's status to the gRPC code counted for it: the mapping of
// google.rpc.Code, but 413 is RESOURCE_EXHAUSTED (the contract's over-size request) and 499 (a
// client that went away; never sent) CANCELLED.
func CodeForStatus(status int) codes.Code {
	switch status {
	case http.StatusOK:
		return codes.OK
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case 499:
		return codes.Canceled
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusInternalServerError:
		return codes.Internal
	}
	return codes.Unknown
}

// preset are the codes a call can end with; their counters exist (at 0) from the start, so that
// every scrape sees the same series. Any other code gets its series when first counted.
var preset = []codes.Code{codes.OK, codes.Canceled, codes.InvalidArgument, codes.DeadlineExceeded,
	codes.ResourceExhausted, codes.Unavailable}

// Metrics are the series both servers export, under the same names as the Python
// implementations:
//
//	rpc_requests_total{method,code}          calls answered, by RPC and gRPC code name
//	rpc_request_duration_seconds{method}     from the call's start to its last byte
//	rpc_in_flight                            calls admitted and not yet finished
type Metrics struct {
	handler  http.Handler
	requests *prometheus.CounterVec
	counters [numMethods][len(codeNames)]atomic.Pointer[prometheus.Counter]
	duration [numMethods]prometheus.Observer
}

// NewMetrics registers the series in a registry of their own; rpc_in_flight reads lim at scrape
// time.
func NewMetrics(lim *Limiter) *Metrics {
	reg := prometheus.NewRegistry()
	m := NewMetricsOn(reg, lim)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// NewMetricsOn registers the series on reg, beside a server's own (a proxy serving this
// contract exports them too); its Handler is nil: reg's owner serves them.
func NewMetricsOn(reg prometheus.Registerer, lim *Limiter) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpc_requests_total",
			Help: "Calls of the Recommendations service answered, by RPC and gRPC status code (REST: mapped from the HTTP status).",
		}, []string{"method", "code"}),
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rpc_request_duration_seconds",
		Help:    "Time from a call's arrival to its end (a stream's: its last message and status).",
		Buckets: DurationBuckets,
	}, []string{"method"})
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rpc_in_flight",
		Help: "Calls of the Recommendations service admitted and not yet finished.",
	}, func() float64 { return float64(lim.InFlight()) })
	reg.MustRegister(m.requests, duration, inFlight)
	for meth := Method(0); meth < numMethods; meth++ {
		m.duration[meth] = duration.WithLabelValues(meth.String())
		for _, c := range preset {
			m.counter(meth, c)
		}
	}
	return m
}

// Observe counts one call of meth that ended with code after d.
func (m *Metrics) Observe(meth Method, code codes.Code, d time.Duration) {
	m.counter(meth, code).Inc()
	m.duration[meth].Observe(d.Seconds())
}

// counter is the rpc_requests_total child of (meth, code), resolved once.
func (m *Metrics) counter(meth Method, code codes.Code) prometheus.Counter {
	if int(code) >= len(codeNames) {
		code = codes.Unknown
	}
	slot := &m.counters[meth][code]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(meth.String(), CodeName(code)) // the same child every time
	slot.Store(&c)
	return c
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.handler }
