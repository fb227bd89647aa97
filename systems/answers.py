"""The answers every Python service gives the same way: JSON, the contracts' error envelope
``{"error": {"code", "message"}}``, ``/healthz``, ``/metrics``, and the series every service
exports (``RequestMetrics``). ``systems.serving`` re-exports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

JSON: Final = "application/json"
HEALTHY: Final = b'{"status":"ok"}'
#: Latency buckets from 100 µs to 10 s, the workerpool and rpc contracts' (and their Go
#: servers', bucket by bucket).
WIDE_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
    0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# The contracts name exactly their series; *_created companions would be noise next to Go's.
disable_created_metrics()  # type: ignore[no-untyped-call]


def error_body(code: str, message: str) -> bytes:
    """The contracts' error envelope, compact, with client text in the message escaped."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()


def json_response(
    status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A complete JSON answer (``Content-Type: application/json``, with its length)."""
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error answer with the envelope; hot paths keep a prebuilt ``error_body`` instead."""
    return json_response(status, error_body(code, message), headers)


class Failure(Exception):
    """An answer other than the route's own: its status and prebuilt envelope; ``close`` the
    connection after it (a body left unread)."""

    def __init__(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.status, self.body, self.close = status, body, close

    def response(self) -> web.Response:
        response = json_response(self.status, self.body)
        if self.close:
            response.force_close()
        return response


def json_kind(value: object) -> str:
    """What a parsed JSON value is, for a message: "an object", "an array", "a number" …"""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def health_response() -> web.Response:
    """``200 {"status":"ok"}``."""
    return json_response(200, HEALTHY)


def metrics_response(registry: CollectorRegistry) -> web.Response:
    """The registry in the Prometheus text format."""
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


class RequestMetrics:
    """The series every service exports, in ``registry``, a registry of their own:
    ``<prefix>_requests_total`` by ``code``, ``<prefix>_request_duration_seconds`` and
    ``<prefix>_in_flight``. The pattern's own series go into ``registry`` too.

    The counter children of ``known_codes`` are bound up front, so they read 0 before first use.
    """

    def __init__(
        self,
        prefix: str,
        *,
        buckets: Sequence[float],
        known_codes: Collection[int],
        requests_help: str,
        duration_help: str,
        in_flight_help: str,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(f"{prefix}_requests", requests_help, ["code"], registry=r)
        self.duration = Histogram(
            f"{prefix}_request_duration_seconds", duration_help, buckets=buckets, registry=r
        )
        self._in_flight = Gauge(f"{prefix}_in_flight", in_flight_help, registry=r)
        self._codes = {code: self._requests.labels(str(code)) for code in known_codes}

    def count(self, code: int, seconds: float) -> None:
        """Count one answer with status ``code`` that took ``seconds``."""
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self._requests.labels(str(code))
        child.inc()
        self.duration.observe(seconds)

    def watch_in_flight(self, read: Callable[[], float]) -> None:
        """Have ``<prefix>_in_flight`` call ``read`` at scrape time (nothing on the hot path)."""
        self._in_flight.set_function(read)


_NOT_FOUND: Final = error_body("not_found", "no such path")
_GET_ONLY: Final = error_body("method_not_allowed", "only GET is allowed here")


def ops_response(method: str, path: str, registry: CollectorRegistry) -> web.Response:
    """The answer of ``GET /metrics`` (``registry``) and ``GET /healthz``: 405 to another method
    on them, 404 on any other path (both in the envelope). Never counted in the metrics."""
    if path != "/metrics" and path != "/healthz":
        return json_response(404, _NOT_FOUND)
    if method != "GET":
        return json_response(405, _GET_ONLY, {"Allow": "GET"})
    return metrics_response(registry) if path == "/metrics" else health_response()
