"""The Prometheus series of the fan-out service: names, labels and buckets fixed by the contract."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from systems.serving import RequestMetrics

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


class Metrics:
    """All series in one dedicated registry, with the label children the hot path needs bound once.

    ``http`` holds the series every service has (``fanout_requests_total``,
    ``fanout_request_duration_seconds``, ``fanout_in_flight``); ``attempts[b]`` holds the
    ``fanout_backend_calls_total`` children of backend ``b`` in the order of ``OUTCOMES``.
    """

    def __init__(self, backends: Sequence[str]) -> None:
        self.http = RequestMetrics(
            "fanout",
            buckets=DURATION_BUCKETS,
            known_codes=KNOWN_CODES,
            requests_help="Answers sent, by HTTP status.",
            duration_help="Time from the request's arrival at the handler to its answer.",
            in_flight_help="Catalog requests in progress.",
        )
        self.registry = r = self.http.registry
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
        self.attempts = [tuple(calls.labels(b, o) for o in OUTCOMES) for b in backends]
        self.hedges = [hedges.labels(b) for b in backends]
        self.timeouts = [timeouts.labels(b) for b in backends]
