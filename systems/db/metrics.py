"""The db pattern's Prometheus series (``README.md``, "Metrics" and "The outbox relay"): the
same names, labels and buckets in both implementations (Go: ``go/cmd/dbpgx``), so that the two
compare bucket by bucket.

The service's (``Metrics``):

- ``db_request_duration_seconds{route,code}``: a request's time in the handler, ``route`` one
  of ``item``, ``items``, ``orders`` (every answer on those paths, 405s and 400s included);
- ``db_pool_acquire_seconds``: the wait for a pooled connection, once per request that asks for
  one (a wait that ends in a time-out or a failed connect included);
- ``db_conn_held_seconds``: from the connection's acquisition to its release, once per request;
- ``db_query_duration_seconds{query}``: one statement's round trip (``QUERIES``);
- ``db_transactions_total{outcome}``: ``commit`` (COMMIT returned), ``rollback`` (any
  transaction begun that did not commit: a shortfall, an unknown item, an error);
- ``db_pool_connections{state}``: ``max`` (``--pool-size``), ``busy`` and ``idle`` (open
  connections in use and not), read at scrape time;
- ``db_unavailable_total``: the 503s answered for the database's sake.

The relay's (``RelayMetrics``): ``outbox_lag_seconds``, ``outbox_published_total``,
``outbox_duplicates_total``, ``outbox_batch_size``, ``outbox_relay_errors_total``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from systems.answers import WIDE_BUCKETS

#: Latency buckets from 50 µs to 10 s: the other patterns' (WIDE_BUCKETS) with finer steps below
#: 2 ms, where a statement's round trip on loopback and a free connection's acquisition fall.
#: go-pgx's ``Buckets`` are these, written out: the two compare bucket by bucket.
FINE_BUCKETS: Final = tuple(
    sorted({*WIDE_BUCKETS, 0.00005, 0.000075, 0.00015, 0.0002, 0.0003, 0.00075, 0.0015})
)
#: The commit-to-publish lag: the fine buckets, then up to a minute (a database restart).
LAG_BUCKETS: Final = (*FINE_BUCKETS, 20.0, 30.0, 60.0)
#: Rows per non-empty relay batch.
BATCH_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

ROUTES: Final = ("item", "items", "orders")
QUERIES: Final = (
    "item",
    "items_any",
    "item_each",
    "take_stock",
    "insert_order",
    "insert_lines",
    "insert_outbox",
    "commit",
)
#: The statuses each route can answer, bound up front so that every scrape sees them.
KNOWN_CODES: Final = {
    "item": (200, 400, 404, 405, 503),
    "items": (200, 400, 405, 503),
    "orders": (201, 400, 404, 405, 409, 413, 503),
}

#: ``() -> (busy, idle)``: the pool's open connections in use and idle, read at scrape time.
PoolReader = Callable[[], tuple[int, int]]


class Metrics:
    """The service's series in a registry of their own; the children the hot path uses, bound."""

    def __init__(self, pool_size: int) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._request = Histogram(
            "db_request_duration_seconds",
            "Time from a request's arrival at the handler to its answer, by route and status.",
            ["route", "code"],
            buckets=FINE_BUCKETS,
            registry=r,
        )
        self.acquire = Histogram(
            "db_pool_acquire_seconds",
            "Time waiting for a pooled connection, once per request that asks for one.",
            buckets=FINE_BUCKETS,
            registry=r,
        )
        self.held = Histogram(
            "db_conn_held_seconds",
            "Time a request holds its pooled connection, from acquisition to release.",
            buckets=FINE_BUCKETS,
            registry=r,
        )
        query = Histogram(
            "db_query_duration_seconds",
            "One statement's time, from sending it to its result.",
            ["query"],
            buckets=FINE_BUCKETS,
            registry=r,
        )
        self.query = {name: query.labels(name) for name in QUERIES}
        transactions = Counter(
            "db_transactions",
            "Transactions ended: commit (COMMIT returned) or rollback (anything else).",
            ["outcome"],
            registry=r,
        )
        self.commits = transactions.labels("commit")
        self.rollbacks = transactions.labels("rollback")
        connections = Gauge(
            "db_pool_connections",
            "The pool's connections at scrape time: max (--pool-size), busy and idle (open).",
            ["state"],
            registry=r,
        )
        connections.labels("max").set(pool_size)
        self._busy = connections.labels("busy")
        self._idle = connections.labels("idle")
        self.unavailable = Counter(
            "db_unavailable",
            "Requests answered 503 for the database's sake (unreachable, refusing, too slow).",
            registry=r,
        )
        self._requests = {
            (route, code): self._request.labels(route, str(code))
            for route, codes in KNOWN_CODES.items()
            for code in codes
        }

    def watch_pool(self, read: PoolReader) -> None:
        """Have ``db_pool_connections{state="busy"|"idle"}`` call ``read`` at scrape time."""
        self._busy.set_function(lambda: read()[0])
        self._idle.set_function(lambda: read()[1])

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        """One answer on ``route`` with status ``code`` after ``seconds``."""
        child = self._requests.get((route, code))
        if child is None:
            child = self._requests[route, code] = self._request.labels(route, str(code))
        child.observe(seconds)


class RelayMetrics:
    """The outbox relay's series in a registry of their own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.lag = Histogram(
            "outbox_lag_seconds",
            "Time from an outbox row's commit to its publication in the sink.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.published = Counter(
            "outbox_published",
            "Outbox rows published to the sink (deliveries, duplicates included).",
            registry=r,
        )
        self.duplicates = Counter(
            "outbox_duplicates",
            "Deliveries of an event the sink already held (at least once: counted, not lost).",
            registry=r,
        )
        self.batch = Histogram(
            "outbox_batch_size",
            "Rows per non-empty batch the relay selected.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "outbox_relay_errors",
            "Errors that made the relay drop its connections and reconnect.",
            registry=r,
        )
