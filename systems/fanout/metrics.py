"""The Prometheus series of the fan-out service: names, labels and buckets fixed by the contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.5,
    1.0,
    2.5,
)
OUTCOMES = ("ok", "error", "timeout", "cancelled")
# Status codes whose counter children are bound up front (so they read 0 before first use).
KNOWN_CODES = (200, 400, 404, 405, 503)

# The contract names exactly these series; *_created companions would be noise next to Go's.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """All series in one dedicated registry, with the label children the hot path needs bound once.

    ``attempts[b]`` holds the ``fanout_backend_calls_total`` children of backend ``b`` in the
    order of ``OUTCOMES``.
    """

    def __init__(self, backends: Sequence[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "fanout_requests", "Answers sent, by HTTP status.", ["code"], registry=r
        )
        self.duration = Histogram(
            "fanout_request_duration_seconds",
            "Time from the request's arrival at the handler to its answer.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        calls = Counter(
            "fanout_backend_calls",
            "Backend call attempts, by outcome.",
            ["backend", "outcome"],
            registry=r,
        )
        hedges = Counter("fanout_hedges", "Hedged attempts started.", ["backend"], registry=r)
        timeouts = Counter(
            "fanout_timeouts", "Parts missing with reason timeout.", ["backend"], registry=r
        )
        self._in_flight = Gauge("fanout_in_flight", "Catalog requests in progress.", registry=r)
        self.attempts = [tuple(calls.labels(b, o) for o in OUTCOMES) for b in backends]
        self.hedges = [hedges.labels(b) for b in backends]
        self.timeouts = [timeouts.labels(b) for b in backends]
        self.requests = {code: self._requests.labels(str(code)) for code in KNOWN_CODES}

    def watch_in_flight(self, read: Callable[[], float]) -> None:
        """Have ``fanout_in_flight`` read the count at scrape time (nothing on the hot path)."""
        self._in_flight.set_function(read)

    def count_request(self, code: int, seconds: float) -> None:
        """Count one answer with status ``code`` that took ``seconds``."""
        child = self.requests.get(code)
        if child is None:
            child = self.requests[code] = self._requests.labels(str(code))
        child.inc()
        self.duration.observe(seconds)
