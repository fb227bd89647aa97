"""The fan-out service: command line, HTTP front and start-up, on ``systems/serving.py``.

    python -m systems.fanout.service --listen 127.0.0.1:8081 \\
        --replicas http://127.0.0.1:9101,http://127.0.0.1:9102 --fanout 4 \\
        --call-timeout-ms 100 --deadline-ms 250 --hedge-delay-ms 0 --max-in-flight 128 \\
        --max-lag-ms 10

One handler that routes by path (every error is the contract's JSON envelope), one pooled
``aiohttp.ClientSession``, uvloop, one process; SIGTERM or SIGINT drains the requests in flight
(at most 5 s). See ``README.md`` for the contract.

Admission (README, "Overload"): a catalog request is refused with 503 when as many are in
progress as the limit allows: ``max-in-flight``, lowered while the event loop runs more than
``max-lag-ms`` late (``systems.overload.AdaptiveLimit``). /healthz and /metrics are never
refused.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from yarl import URL

from systems import serving
from systems.fanout.gather import BACKENDS, Fanout
from systems.fanout.metrics import Metrics
from systems.overload import AdaptiveLimit
from systems.serving import error_body, int_in, json_response

ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CATALOG = "/catalog/"
#: Open client connections the fd limit allows for: admission bounds requests, not connections
#: (a refused client keeps its connection), and an overloaded service is held to many.
CLIENT_CONNECTIONS = 4096


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line."""

    host: str
    port: int
    replicas: tuple[URL, ...]
    fanout: int
    call_timeout_ms: int
    deadline_ms: int
    hedge_delay_ms: int
    max_in_flight: int
    max_lag_ms: int


def parse_replicas(text: str) -> tuple[URL, ...]:
    """Comma-separated ``http(s)://HOST[:PORT][/PATH]`` base URLs."""
    replicas = []
    for item in text.split(","):
        try:
            url = URL(item.strip())
            ok = url.scheme in ("http", "https") and bool(url.host)
        except ValueError:
            ok = False
        if not ok or url.query_string or url.fragment or url.user:
            raise argparse.ArgumentTypeError(f"not an http(s) base URL: {item!r}")
        replicas.append(url)
    return tuple(replicas)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser("fanout", __doc__)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", 8080))
    p.add_argument("--replicas", type=parse_replicas, required=True)
    p.add_argument("--fanout", type=int_in(1, len(BACKENDS)), default=4)
    p.add_argument("--call-timeout-ms", type=int_in(0), default=100)
    p.add_argument("--deadline-ms", type=int_in(0), default=250)
    p.add_argument("--hedge-delay-ms", type=int_in(0), default=0)
    p.add_argument("--max-in-flight", type=int_in(1), default=128)
    p.add_argument("--max-lag-ms", type=int_in(0), default=10)
    a = p.parse_args(argv)
    if a.hedge_delay_ms > 0 and len(a.replicas) < 2:
        p.error("argument --hedge-delay-ms: hedging needs at least two --replicas")
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        replicas=a.replicas,
        fanout=a.fanout,
        call_timeout_ms=a.call_timeout_ms,
        deadline_ms=a.deadline_ms,
        hedge_delay_ms=a.hedge_delay_ms,
        max_in_flight=a.max_in_flight,
        max_lag_ms=a.max_lag_ms,
    )


_BAD_ITEM = error_body("invalid_argument", "item_id must match ^[A-Za-z0-9_-]{1,64}$")
_NOT_FOUND = error_body("not_found", "no such path")
_NOT_ALLOWED = error_body("method_not_allowed", "only GET is allowed here")
_OVERLOADED = error_body("overloaded", "too many requests in flight, retry later")
_RETRY = {"Retry-After": "1"}
_INTERNAL = error_body("internal", "internal error")


class Handler:
    """Routes every request; counts answers (except /healthz and /metrics) and durations."""

    def __init__(self, fanout: Fanout, metrics: Metrics, limit: AdaptiveLimit) -> None:
        self.in_flight = 0
        self._fanout = fanout
        self._metrics = metrics
        self._http = metrics.http
        self._limit = limit

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        start = time.perf_counter()
        path = request.path
        if path.startswith(CATALOG):
            response = await self._catalog(request.method, path[len(CATALOG) :])
        elif path == "/healthz" or path == "/metrics":
            if request.method != "GET":
                response = json_response(405, _NOT_ALLOWED, {"Allow": "GET"})
            elif path == "/healthz":
                return serving.health_response()
            else:
                return serving.metrics_response(self._metrics.registry)
        else:
            response = json_response(404, _NOT_FOUND)
        self._http.count(response.status, time.perf_counter() - start)
        return response

    async def _catalog(self, method: str, item_id: str) -> web.Response:
        if method != "GET":
            return json_response(405, _NOT_ALLOWED, {"Allow": "GET"})
        if ITEM_ID.fullmatch(item_id) is None:
            return json_response(400, _BAD_ITEM)
        # Admission comes before anything is allocated for the request.
        if self.in_flight >= self._limit.value:
            return json_response(503, _OVERLOADED, _RETRY)
        self.in_flight += 1
        try:
            body = await self._fanout.catalog(item_id)
        except Exception:  # a bug, not a backend failure: still answer with the envelope
            return json_response(500, _INTERNAL)
        finally:
            self.in_flight -= 1
        return json_response(200, body)


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests in flight (at most 5 s) and return."""
    attempts = 2 if config.hedge_delay_ms > 0 else 1
    limit = config.max_in_flight * config.fanout * attempts
    serving.raise_fd_limit(limit + CLIENT_CONNECTIONS + 256)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=15),
        timeout=aiohttp.ClientTimeout(),  # asyncio.timeout bounds every call instead
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    admission = AdaptiveLimit(config.max_in_flight, config.max_lag_ms / 1000)
    try:
        backends = BACKENDS[: config.fanout]
        metrics = Metrics(backends)
        fanout = Fanout(
            session,
            config.replicas,
            backends,
            call_timeout=config.call_timeout_ms / 1000,
            deadline=config.deadline_ms / 1000,
            hedge_delay=config.hedge_delay_ms / 1000,
            metrics=metrics,
        )
        handler = Handler(fanout, metrics, admission)
        metrics.http.watch_in_flight(lambda: handler.in_flight)
        admission.start()
        await serving.serve(handler, config.host, config.port)
    finally:
        admission.stop()
        await session.close()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    return serving.run("fanout", lambda: run(config), client=True)


if __name__ == "__main__":
    sys.exit(main())
