"""The worker-pool service: command line, HTTP front, start-up and shutdown.

    python -m systems.workerpool.service --pool sync|threads|processes \\
        [--workers N] [--queue N] [--timeout-ms N] [--max-lag-ms N] [--listen 127.0.0.1:8080]

One handler that routes by path (every error is the contract's JSON envelope), on the shared
scaffold (``systems/serving.py``), uvloop, one process (plus the worker processes of ``--pool
processes``). ``request`` parses and validates a /work request; ``admission`` admits its task
and runs it in the pool. See ``README.md``, "The service contract".

Validation comes first, so a 400 never takes a slot. A thread or process pool admits fewer than
``workers + queue`` while the event loop runs more than ``--max-lag-ms`` late
(``systems.overload.AdaptiveLimit``): the workers hold the GIL or the CPUs the loop needs to read
and refuse requests, and a bound the loop cannot enforce in time bounds nothing. The deadline
(``--timeout-ms``) runs from the request's arrival at the handler. A client that goes away
cancels its handler (aiohttp's ``handler_cancellation``), which drops its task exactly as the
deadline does.

On SIGTERM or SIGINT the service stops accepting, lets the requests in flight finish until 5 s
after the signal (no sync kernel starts later than that), then answers those still waiting
``503 overloaded`` with ``Retry-After: 1`` (as the Go service does), drops their tasks, waits
for the kernels running, shuts the pool down and exits with status 0.
"""

from __future__ import annotations

import asyncio
import multiprocessing.forkserver
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from systems import serving
from systems.overload import AdaptiveLimit
from systems.serving import error_body, json_response
from systems.workerpool.admission import (
    SETTLE_TURNS,
    Behind,
    InlinePool,
    Overloaded,
    Pool,
    ShuttingDown,
    make_pool,
)
from systems.workerpool.metrics import Metrics
from systems.workerpool.pools import POOL_KINDS, PoolKind
from systems.workerpool.request import (
    InvalidArgument,
    answer_body,
    parse_body,
    parse_query,
    quote,
    read_body,
)

MAX_WORKERS: Final = 256
#: The --max-lag-ms default (README, "Admission, the bounded queue and the deadline").
DEFAULT_MAX_LAG_MS: Final = 50
WARM_UP_S: Final = 60.0
WORK: Final = "/work"


# --- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line."""

    host: str
    port: int
    pool: PoolKind
    workers: int
    queue: int
    timeout_ms: int
    max_lag_ms: int


def default_workers() -> int:
    """The CPUs this process may run on (at most ``MAX_WORKERS``)."""
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser("workerpool", __doc__)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", 8080))
    p.add_argument("--pool", choices=POOL_KINDS, required=True)
    p.add_argument("--workers", type=serving.int_in(1, MAX_WORKERS), default=None)
    p.add_argument("--queue", type=serving.int_in(0, 100_000), default=64)
    p.add_argument("--timeout-ms", type=serving.int_in(1, 600_000), default=10_000)
    p.add_argument("--max-lag-ms", type=serving.int_in(0, 600_000), default=DEFAULT_MAX_LAG_MS)
    a = p.parse_args(argv)
    pool: PoolKind = a.pool
    if pool == "sync":
        if a.workers not in (None, 1):
            p.error(f"argument --workers: the sync pool runs one task at a time, not {a.workers}")
        workers = 1
    else:
        workers = default_workers() if a.workers is None else a.workers
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        pool=pool,
        workers=workers,
        queue=a.queue,
        timeout_ms=a.timeout_ms,
        max_lag_ms=a.max_lag_ms,
    )


# --- HTTP -----------------------------------------------------------------------------------------


_INTERNAL = error_body("internal", "internal error: the task failed in the pool")
_SHUTTING_DOWN = error_body("overloaded", "the service is shutting down, retry elsewhere")
_BEHIND = error_body("overloaded", "the service is falling behind, retry later")


def _not_allowed(method: str, allow: str) -> web.Response:
    message = f"method {quote(method)} not allowed: only {allow}"
    return json_response(405, error_body("method_not_allowed", message), {"Allow": allow})


class Handler:
    """Routes every request; counts /work answers and their durations."""

    def __init__(self, pool: Pool, metrics: Metrics, config: Config) -> None:
        self._pool = pool
        self._metrics = metrics
        self._http = metrics.http
        self._timeout = config.timeout_ms / 1000
        self._working: set[asyncio.Task[Any]] = set()
        self._stopping = False
        capacity = config.workers + config.queue
        self._overloaded = error_body(
            "overloaded", f"{capacity} tasks (workers + queue) already admitted, retry later"
        )
        self._deadline = error_body(
            "deadline_exceeded", f"the task did not finish within {config.timeout_ms} ms"
        )

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == WORK:
            start = time.perf_counter()
            current = asyncio.current_task()
            assert current is not None
            self._working.add(current)
            try:
                response = await self._work(request)
            finally:
                self._working.discard(current)
            self._http.count(response.status, time.perf_counter() - start)
            return response
        if path == "/healthz" or path == "/metrics":
            if request.method != "GET":
                return _not_allowed(request.method, "GET")
            if path == "/healthz":
                return serving.health_response()
            return serving.metrics_response(self._metrics.registry)
        return json_response(404, error_body("not_found", f"no such path: {quote(path)}"))

    async def _work(self, request: web.BaseRequest) -> web.Response:
        method = request.method
        if method != "GET" and method != "POST":
            return _not_allowed(method, "GET, POST")
        deadline = time.monotonic() + self._timeout
        try:
            if method == "GET":
                task = parse_query(request.query.items())
            else:
                if request.query_string:
                    raise InvalidArgument("query: a POST takes its fields from the body")
                async with asyncio.timeout(self._timeout):
                    body = await read_body(request)
                task = parse_body(body)
        except InvalidArgument as exc:
            return json_response(400, error_body("invalid_argument", str(exc)))
        except TimeoutError:  # the body did not arrive within the deadline
            return json_response(504, self._deadline)
        try:
            output = await self._pool.run(task, deadline)
        except Behind:
            return json_response(503, _BEHIND, {"Retry-After": "1"})
        except Overloaded:
            return json_response(503, self._overloaded, {"Retry-After": "1"})
        except TimeoutError:
            return json_response(504, self._deadline)
        except ShuttingDown:
            return json_response(503, _SHUTTING_DOWN, {"Retry-After": "1"})
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._stopping or current is None:
                raise  # the client went away
            current.uncancel()  # our own cancel (see _stop_waiting): answer it
            return json_response(503, _SHUTTING_DOWN, {"Retry-After": "1"})
        except Exception as exc:  # e.g. a broken process pool: not the client's fault
            print(f"workerpool: task failed: {exc!r}", file=sys.stderr, flush=True)
            return json_response(500, _INTERNAL)
        return json_response(200, answer_body(task, output))

    def _drain_by(self, when: float) -> None:
        """Start no sync kernel after ``when`` (``time.monotonic()``); see ``_stop_waiting``."""
        if isinstance(self._pool, InlinePool):
            self._pool.stop_at = when

    def _stop_waiting(self) -> None:
        """Answer 503 to every /work request still waiting (as Go does at shutdown).

        Their tasks are dropped if not started; a running kernel finishes in its worker.
        """
        self._stopping = True
        for task in list(self._working):
            task.cancel()

    async def drain(self, runner: web.ServerRunner, until: float) -> None:
        """Stop accepting and let requests in flight finish; at ``until`` answer those left 503.

        Connections and requests that arrived before the signal are accepted and read first (a few
        loop turns each side of closing the listener), so that they are not refused or closed as
        idle: this matters for sync, whose loop may just have unblocked with a backlog.
        """
        self._drain_by(until)
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)
        for site in list(runner.sites):
            await site.stop()
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)
        cleanup = asyncio.create_task(runner.cleanup())
        done, _ = await asyncio.wait({cleanup}, timeout=max(0.0, until - time.monotonic()))
        if not done:
            self._stop_waiting()
        await cleanup


# --- start-up and shutdown ----------------------------------------------------------------------


def _start_forkserver_deaf() -> None:
    """Start the forkserver with SIGINT and SIGTERM ignored, which the workers it forks inherit.

    A Ctrl-C (or a signal to the whole process group) then stops the service, which stops its
    pool in order, instead of killing the workers under the tasks in flight. Call it before
    the loop installs its own handlers: exec resets handled signals, but keeps ignored ones.
    """
    deaf = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in deaf}
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, drain (at most 5 s), shut the pool down and return.

    Every worker of the pool is started (for processes: forked, the kernels imported) before
    the ``listening on ADDR`` line.
    """
    if config.pool == "processes":
        _start_forkserver_deaf()
    # Admission bounds tasks, not connections: a refused client keeps its connection.
    serving.raise_fd_limit(config.workers + config.queue + 4096)
    metrics = Metrics(config.workers)
    capacity = config.workers + config.queue
    # Inline kernels block the loop by design: its lateness says nothing there.
    limit = AdaptiveLimit(capacity, 0 if config.pool == "sync" else config.max_lag_ms / 1000)
    pool = make_pool(config.pool, config.workers, capacity, metrics, limit)
    limit.start()
    try:
        metrics.http.watch_in_flight(lambda: pool.in_flight)
        handler = Handler(pool, metrics, config)

        async def start_workers() -> None:
            async with asyncio.timeout(WARM_UP_S):
                await pool.start()

        await serving.serve(
            handler,
            config.host,
            config.port,
            ready=start_workers,
            drain=handler.drain,
            handler_cancellation=True,
        )
    finally:
        limit.stop()
        await pool.close()  # waits for running kernels (at most ~2 s each by the limits)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    return serving.run("workerpool", lambda: run(config))


if __name__ == "__main__":
    sys.exit(main())
