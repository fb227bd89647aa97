"""The fan-out service: command line, HTTP front, start-up and graceful shutdown.

    python -m systems.fanout.service --listen 127.0.0.1:8081 \\
        --replicas http://127.0.0.1:9101,http://127.0.0.1:9102 --fanout 4 \\
        --call-timeout-ms 100 --deadline-ms 250 --hedge-delay-ms 0 --max-in-flight 1024

aiohttp's low-level ``web.Server`` with one handler that routes by path (no router or
middleware layers on the hot path, and every error is the contract's JSON envelope), one
pooled ``aiohttp.ClientSession``, uvloop, one process. See ``README.md`` for the contract.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import aiohttp
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from systems.fanout.gather import BACKENDS, Fanout
from systems.fanout.metrics import Metrics

ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CATALOG = "/catalog/"
SHUTDOWN_DRAIN_S = 5.0
JSON = "application/json"


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


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag as one line on stderr (no usage block) and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_in(low: int, high: int | None) -> argparse._ActionType:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return convert


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a host and a port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


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
    p = _OneLineParser(prog="fanout", description=__doc__, allow_abbrev=False)
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080))
    p.add_argument("--replicas", type=parse_replicas, required=True)
    p.add_argument("--fanout", type=_int_in(1, len(BACKENDS)), default=4)
    p.add_argument("--call-timeout-ms", type=_int_in(0, None), default=100)
    p.add_argument("--deadline-ms", type=_int_in(0, None), default=250)
    p.add_argument("--hedge-delay-ms", type=_int_in(0, None), default=0)
    p.add_argument("--max-in-flight", type=_int_in(1, None), default=1024)
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
    )


def error_body(code: str, message: str) -> bytes:
    """The contract's error envelope."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()


_BAD_ITEM = error_body("invalid_argument", "item_id must match ^[A-Za-z0-9_-]{1,64}$")
_NOT_FOUND = error_body("not_found", "no such path")
_NOT_ALLOWED = error_body("method_not_allowed", "only GET is allowed here")
_OVERLOADED = error_body("overloaded", "too many requests in flight, retry later")
_INTERNAL = error_body("internal", "internal error")
_HEALTHY = b'{"status":"ok"}'


class Handler:
    """Routes every request; counts answers (except /healthz and /metrics) and durations."""

    def __init__(self, fanout: Fanout, metrics: Metrics, max_in_flight: int) -> None:
        self.in_flight = 0
        self._fanout = fanout
        self._metrics = metrics
        self._max_in_flight = max_in_flight

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        start = time.perf_counter()
        path = request.path
        if path.startswith(CATALOG):
            response = await self._catalog(request.method, path[len(CATALOG) :])
        elif path == "/healthz" or path == "/metrics":
            if request.method != "GET":
                response = _error(405, _NOT_ALLOWED, {"Allow": "GET"})
            elif path == "/healthz":
                return web.Response(body=_HEALTHY, content_type=JSON)
            else:
                body = generate_latest(self._metrics.registry)
                return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
        else:
            response = _error(404, _NOT_FOUND)
        self._metrics.count_request(response.status, time.perf_counter() - start)
        return response

    async def _catalog(self, method: str, item_id: str) -> web.Response:
        if method != "GET":
            return _error(405, _NOT_ALLOWED, {"Allow": "GET"})
        if ITEM_ID.fullmatch(item_id) is None:
            return _error(400, _BAD_ITEM)
        if self.in_flight >= self._max_in_flight:
            return _error(503, _OVERLOADED, {"Retry-After": "1"})
        self.in_flight += 1
        try:
            body = await self._fanout.catalog(item_id)
        except Exception:  # a bug, not a backend failure: still answer with the envelope
            return _error(500, _INTERNAL)
        finally:
            self.in_flight -= 1
        return web.Response(body=body, content_type=JSON)


def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


def c_parser_problem() -> str | None:
    """Why aiohttp would run its pure-Python HTTP parsers (about half the throughput), if so."""
    from aiohttp import client_proto, http_parser, web_protocol

    # The parser classes the server and the client actually bind, against the C extension's.
    request_c = getattr(http_parser, "HttpRequestParserC", None)
    response_c = getattr(http_parser, "HttpResponseParserC", None)
    if request_c is None or getattr(web_protocol, "HttpRequestParser", None) is not request_c:
        return "aiohttp's C HTTP request parser is not in use (AIOHTTP_NO_EXTENSIONS set?)"
    if response_c is None or getattr(client_proto, "HttpResponseParser", None) is not response_c:
        return "aiohttp's C HTTP response parser is not in use (AIOHTTP_NO_EXTENSIONS set?)"
    return None


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests in flight (at most 5 s) and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    attempts = 2 if config.hedge_delay_ms > 0 else 1
    limit = config.max_in_flight * config.fanout * attempts
    _raise_fd_limit(limit + config.max_in_flight + 256)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=15),
        timeout=aiohttp.ClientTimeout(),  # asyncio.timeout bounds every call instead
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
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
        handler = Handler(fanout, metrics, config.max_in_flight)
        metrics.watch_in_flight(lambda: handler.in_flight)
        server = web.Server(handler, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_DRAIN_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, config.host or None, config.port, backlog=1024).start()
            host, port = runner.addresses[0][:2]
            host = f"[{host}]" if ":" in host else host
            print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()  # stop accepting, close idle connections, drain (<= 5 s)
    finally:
        await session.close()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    problem = c_parser_problem()
    if problem is not None:
        print(f"fanout: refusing to start: {problem}", file=sys.stderr)
        return 1
    try:
        uvloop.run(serve(config))
    except OSError as exc:  # e.g. the listen address is taken
        print(f"fanout: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
