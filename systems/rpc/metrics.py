"""The rpc pattern's Prometheus series, the same names, labels and buckets in every implementation
(Go: ``go/internal/rpc/recsvc/metrics.go``), over both transports:

- ``rpc_requests_total{method,code}``: calls answered, by RPC (``Recommend``,
  ``StreamRecommendations``) and gRPC status code name (``OK``, ``INVALID_ARGUMENT``, …; REST:
  the code its HTTP status maps to, ``code_for_status``);
- ``rpc_request_duration_seconds{method}``: from a call's arrival to its end (a stream's: its
  last message and status);
- ``rpc_in_flight``: calls admitted and not yet finished, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from systems.answers import WIDE_BUCKETS
from systems.answers import ops_response as ops_response

METHODS: Final = ("Recommend", "StreamRecommendations")


#: The codes a call can end with, bound up front so that every scrape sees them (0 before use).
PRESET_CODES: Final = (
    "OK",
    "CANCELLED",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "UNAVAILABLE",
)

#: A REST answer's status as the gRPC code counted for it (google.rpc.Code's mapping; 413 is the
#: contract's over-size request, 499 a client that went away, never sent). Go's CodeForStatus.
_STATUS_CODES: Final = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def code_for_status(status: int) -> str:
    """The gRPC code name counted for a REST answer with HTTP status ``status``."""
    return _STATUS_CODES.get(status, "UNKNOWN")


class Metrics:
    """The three series in a registry of their own; ``rpc_in_flight`` calls ``in_flight``."""

    def __init__(self, in_flight: Callable[[], float]) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "rpc_requests",
            "Calls of the Recommendations service answered, by RPC and gRPC status code"
            " (REST: mapped from the HTTP status).",
            ["method", "code"],
            registry=r,
        )
        duration = Histogram(
            "rpc_request_duration_seconds",
            "Time from a call's arrival to its end (a stream's: its last message and status).",
            ["method"],
            buckets=WIDE_BUCKETS,
            registry=r,
        )
        gauge = Gauge(
            "rpc_in_flight",
            "Calls of the Recommendations service admitted and not yet finished.",
            registry=r,
        )
        gauge.set_function(in_flight)
        self._duration = {m: duration.labels(m) for m in METHODS}
        self._counters: dict[tuple[str, str], Counter] = {}
        for method in METHODS:
            for code in PRESET_CODES:
                self._counter(method, code)

    def _counter(self, method: str, code: str) -> Counter:
        child = self._counters.get((method, code))
        if child is None:
            child = self._counters[method, code] = self._requests.labels(method, code)
        return child

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count one call of ``method`` that ended with ``code`` after ``seconds``."""
        self._counter(method, code).inc()
        self._duration[method].observe(seconds)
