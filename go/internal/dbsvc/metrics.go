package dbsvc

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets are the bounds of every histogram here, 50 µs to 10 s:
// systems/db/metrics.py's FINE_BUCKETS, the other patterns' with finer steps
// below 2 ms, where a statement's round trip on loopback and a free
// connection's acquisition fall; the two implementations compare bucket by
// bucket.
var Buckets = []float64{0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0005, 0.00075,
	0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
	0.3, 0.5, 0.75, 1, 2.5, 5, 10}

// route is the route label of db_request_duration_seconds.
type route int

const (
	routeItem route = iota
	routeItems
	routeOrders
	numRoutes
)

var routeNames = [numRoutes]string{"item", "items", "orders"}

// query is the query label of db_query_duration_seconds.
type query int

const (
	qItem query = iota
	qItemsAny
	qItemEach
	qTakeStock
	qInsertOrder
	qInsertLines
	qInsertOutbox
	qCommit
	numQueries
)

var queryNames = [numQueries]string{"item", "items_any", "item_each", "take_stock", "insert_order",
	"insert_lines", "insert_outbox", "commit"}

// knownCodes are the statuses each route can answer (systems/db/metrics.py's
// KNOWN_CODES): their series exist from the start, so that every scrape sees
// them.
var knownCodes = [numRoutes][]int{
	routeItem:   {200, 400, 404, 405, 503},
	routeItems:  {200, 400, 405, 503},
	routeOrders: {201, 400, 404, 405, 409, 413, 503},
}

// metrics are the series of the README's table, under the same names as the
// Python implementation's:
//
//	db_request_duration_seconds{route,code}  the service's time per request (400s and 405s included)
//	db_pool_acquire_seconds                  waiting for a pooled connection (a time-out or failed connect included)
//	db_conn_held_seconds                     from acquired to released
//	db_query_duration_seconds{query}         one statement's time, rows read
//	db_transactions_total{outcome}           commit, rollback
//	db_pool_connections{state}               max, busy, idle at scrape time
//	db_unavailable_total                     503s for the database's sake
type metrics struct {
	handler     http.Handler
	requests    *prometheus.HistogramVec
	known       map[routeCode]prometheus.Observer // read-only once built
	acquire     prometheus.Histogram
	held        prometheus.Histogram
	query       [numQueries]prometheus.Observer
	commits     prometheus.Counter
	rollbacks   prometheus.Counter
	unavailable prometheus.Counter
}

// newMetrics registers the series in a registry of their own;
// db_pool_connections reads stat at scrape time.
func newMetrics(stat func() *pgxpool.Stat) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "db_request_duration_seconds",
			Help:    "The service's time per request, by route (item, items, orders) and HTTP status.",
			Buckets: Buckets,
		}, []string{"route", "code"}),
		acquire: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "db_pool_acquire_seconds",
			Help:    "Time waiting for a pooled connection (connecting a new one included), once per request that needs one.",
			Buckets: Buckets,
		}),
		held: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "db_conn_held_seconds",
			Help:    "Time a request holds its pooled connection, from acquired to released.",
			Buckets: Buckets,
		}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "db_unavailable_total",
			Help: "Requests answered 503 unavailable because the database failed them.",
		}),
	}
	queries := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "db_query_duration_seconds",
		Help:    "One statement's time, from sending it to its last row read, by query.",
		Buckets: Buckets,
	}, []string{"query"})
	tx := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "db_transactions_total",
		Help: "Transactions of POST /orders ended: commit (COMMIT returned), rollback (every other, a lost COMMIT included).",
	}, []string{"outcome"})
	reg.MustRegister(m.requests, m.acquire, m.held, queries, tx, m.unavailable, poolCollector{stat})
	for q := range numQueries {
		m.query[q] = queries.WithLabelValues(queryNames[q])
	}
	m.commits = tx.WithLabelValues("commit")
	m.rollbacks = tx.WithLabelValues("rollback")
	m.known = make(map[routeCode]prometheus.Observer)
	for r, codes := range knownCodes {
		for _, c := range codes {
			m.known[routeCode{route(r), c}] = m.requests.WithLabelValues(routeNames[r], strconv.Itoa(c))
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// observeRequest times one request of r answered status.
func (m *metrics) observeRequest(r route, status int, d time.Duration) {
	m.request(r, status).Observe(d.Seconds())
}

type routeCode struct {
	route route
	code  int
}

func (m *metrics) request(r route, status int) prometheus.Observer {
	if o, ok := m.known[routeCode{r, status}]; ok {
		return o
	}
	return m.requests.WithLabelValues(routeNames[r], strconv.Itoa(status)) // a 499
}

// poolCollector exports db_pool_connections{state} from one pool.Stat() per
// scrape.
type poolCollector struct{ stat func() *pgxpool.Stat }

var poolDesc = prometheus.NewDesc("db_pool_connections",
	"The pool's connections at scrape time: max (its size), busy (acquired), idle.", []string{"state"}, nil)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- poolDesc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(s.MaxConns()), "max")
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(s.AcquiredConns()), "busy")
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
}
