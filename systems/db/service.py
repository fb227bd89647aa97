"""The db pattern's Python service: aiohttp and an asyncpg pool on uvloop (``python-asyncpg``).

    python -m systems.db.service --listen 127.0.0.1:8080 \\
        --dsn postgresql://bench_app@127.0.0.1:5432/bench --pool-size 16 --items 100000 \\
        [--acquire-timeout-ms 2000] [--statement-timeout-ms 5000]

``GET /items/{id}``, ``GET /items?ids=...|count=N[&mode=any|each]`` and ``POST /orders``, with
``GET /healthz`` and ``GET /metrics``, on the shared scaffold (``systems/serving.py``); see
``README.md``, "The contract". ``request`` parses and validates, ``store`` talks to PostgreSQL.

The service starts whether or not the database is up, and answers ``503 unavailable`` with
``Retry-After: 1`` while it is unreachable, restarting or refusing, or while no pooled
connection frees up within ``--acquire-timeout-ms``; it serves again, unrestarted, once the
database is back. A client that goes away does not cancel its request: an order in its
transaction is committed or rolled back, never abandoned half way.

SIGTERM or SIGINT: the scaffold's drain (no new connections, requests in flight get 5 s), then
the pool is closed and the process exits with status 0.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
import structlog
from aiohttp import http_exceptions, web

from systems import serving
from systems.answers import Failure
from systems.db.dsn import chosen
from systems.db.logs import configure_logging, describe
from systems.db.metrics import Metrics
from systems.db.request import (
    MAX_BODY,
    MAX_ID,
    InvalidArgument,
    parse_id,
    parse_items_query,
    parse_order,
    quote,
)
from systems.db.store import (
    Item,
    NoSuchItem,
    Shortfall,
    Store,
    Unavailable,
)
from systems.serving import error_body, json_response

PROG: Final = "db-asyncpg"
ITEM_PREFIX: Final = "/items/"
ITEMS: Final = "/items"
ORDERS: Final = "/orders"
#: How long a POST's body may take to arrive once its head has.
BODY_TIMEOUT_S: Final = 10.0
#: Counted (never sent) for a request whose client went away while sending its body.
CLIENT_GONE: Final = 499
MAX_POOL: Final = 1000
MAX_TIMEOUT_MS: Final = 3_600_000  # an hour
DEFAULT_DSN: Final = "postgresql://bench_app@127.0.0.1:5432/bench"

_RETRY: Final = {"Retry-After": "1"}
_TOO_LARGE: Final = error_body("resource_exhausted", f"body: larger than {MAX_BODY} bytes")
_SLOW_BODY: Final = error_body(
    "invalid_argument", f"body: not received within {BODY_TIMEOUT_S:g} s"
)
_GONE: Final = error_body("cancelled", "the client went away")
_INTERNAL: Final = error_body("internal", "internal error")

Route = Callable[[web.BaseRequest], Awaitable[web.Response]]


# --- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line."""

    host: str
    port: int
    dsn: str
    pool_size: int
    items: int
    acquire_timeout_ms: int
    statement_timeout_ms: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser(PROG, __doc__)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", 8080))
    p.add_argument("--dsn", default=DEFAULT_DSN)
    p.add_argument("--dsn-env", default="", help="a variable whose value, when set, is the DSN")
    p.add_argument("--pool-size", type=serving.int_in(1, MAX_POOL), default=16)
    p.add_argument("--items", type=serving.int_in(1, MAX_ID), default=100_000)
    p.add_argument("--acquire-timeout-ms", type=serving.int_in(1, MAX_TIMEOUT_MS), default=2000)
    p.add_argument("--statement-timeout-ms", type=serving.int_in(1, MAX_TIMEOUT_MS), default=5000)
    a = p.parse_args(argv)
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        dsn=chosen(a.dsn, a.dsn_env),
        pool_size=a.pool_size,
        items=a.items,
        acquire_timeout_ms=a.acquire_timeout_ms,
        statement_timeout_ms=a.statement_timeout_ms,
    )


# --- HTTP ---------------------------------------------------------------------------------------


def _not_allowed(method: str, allow: str) -> web.Response:
    message = f"method {quote(method)} not allowed: only {allow}"
    return json_response(405, error_body("method_not_allowed", message), {"Allow": allow})


async def read_body(request: web.BaseRequest) -> bytes:
    """The body, at most ``MAX_BODY`` bytes: 413 over it (by Content-Length, before reading
    any), 400 when it does not arrive within ``BODY_TIMEOUT_S``."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise Failure(413, _TOO_LARGE, close=True)
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
                body += chunk
                if len(body) > MAX_BODY:  # a Content-Encoding that inflates past the limit
                    raise Failure(413, _TOO_LARGE, close=True)
    except TimeoutError:
        raise Failure(400, _SLOW_BODY, close=True) from None
    except (ConnectionError, http_exceptions.ContentLengthError):
        raise Failure(CLIENT_GONE, _GONE, close=True) from None
    except http_exceptions.HttpProcessingError as exc:  # e.g. a broken Content-Encoding
        message = f"body: cannot be read: {exc.message}"[:200]
        raise Failure(400, error_body("invalid_argument", message), close=True) from None
    return bytes(body)


class Handler:
    """Routes every request; counts the three routes' answers and their durations."""

    def __init__(self, store: Store, metrics: Metrics, items: int) -> None:
        self._store = store
        self._metrics = metrics
        self._items = items
        self._encode = msgspec.json.Encoder().encode
        self._log = structlog.get_logger("db.service")

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        route: str
        serve: Route
        if path.startswith(ITEM_PREFIX) and "/" not in path[len(ITEM_PREFIX) :]:
            route, serve = "item", self._item
        elif path == ITEMS:
            route, serve = "items", self._items_route
        elif path == ORDERS:
            route, serve = "orders", self._orders
        else:
            return serving.ops_response(request.method, path, self._metrics.registry)
        start = time.perf_counter()
        try:
            response = await serve(request)
        except InvalidArgument as exc:
            response = json_response(400, error_body("invalid_argument", str(exc)))
        except Failure as failure:
            response = failure.response()
        except Unavailable as exc:
            self._metrics.unavailable.inc()
            response = json_response(503, error_body("unavailable", str(exc)), _RETRY)
        except Exception as exc:  # a bug: still the envelope, never a traceback to the client
            self._log.error("request failed", route=route, error=describe(exc), exc_info=exc)
            response = json_response(500, _INTERNAL)
        self._metrics.observe_request(route, response.status, time.perf_counter() - start)
        return response

    async def _item(self, request: web.BaseRequest) -> web.Response:
        if request.method != "GET":
            return _not_allowed(request.method, "GET")
        item_id = parse_id(request.path[len(ITEM_PREFIX) :])
        item = await self._store.item(item_id)
        if item is None:
            return json_response(404, error_body("not_found", f"item {item_id}: no such item"))
        return json_response(200, self._encode(item))

    async def _items_route(self, request: web.BaseRequest) -> web.Response:
        if request.method != "GET":
            return _not_allowed(request.method, "GET")
        query = parse_items_query(request.query.items())
        ids = query.resolve(self._items)
        found = await self._store.items(ids, query.mode)
        items: list[Item] = []
        missing: list[int] = []
        for item_id, item in zip(ids, found, strict=True):
            if item is None:
                missing.append(item_id)
            else:
                items.append(item)
        return json_response(200, self._encode({"items": items, "missing": missing}))

    async def _orders(self, request: web.BaseRequest) -> web.Response:
        if request.method != "POST":
            return _not_allowed(request.method, "POST")
        order = parse_order(await read_body(request))
        try:
            placed = await self._store.place_order(order)
        except NoSuchItem as exc:
            return json_response(404, error_body("not_found", str(exc)))
        except Shortfall as exc:
            return json_response(409, error_body("failed_precondition", str(exc)))
        return json_response(201, self._encode(placed))


# --- start-up and shutdown ----------------------------------------------------------------------


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, drain (at most 5 s), close the pool and return.

    Nothing here waits for the database: the pool connects in the background.
    """
    serving.raise_fd_limit(4096 + config.pool_size)
    metrics = Metrics(config.pool_size)
    store = Store(
        config.dsn,
        config.pool_size,
        metrics,
        acquire_timeout_ms=config.acquire_timeout_ms,
        statement_timeout_ms=config.statement_timeout_ms,
    )
    metrics.watch_pool(store.connections)
    await store.open()
    try:
        await serving.serve(Handler(store, metrics, config.items), config.host, config.port)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging()
    return serving.run(PROG, lambda: run(config))


if __name__ == "__main__":
    sys.exit(main())
