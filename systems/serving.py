"""What every Python service here shares, written once (as ``go/internal/serve`` and
``go/internal/httpjson`` are for Go):

- the command line: ``argument_parser`` reports a bad flag as one line, ``PROG: error: ...``,
  and exits with status 2; ``parse_listen`` and ``int_in`` convert flag values;
- start-up: ``raise_fd_limit``, and ``run``, which refuses aiohttp's pure-Python HTTP parsers,
  runs the service on uvloop and turns a failure to listen into one line and status 1;
- answers (``systems.answers``, re-exported here): ``json_response``, the contracts' error
  envelope ``{"error": {"code", "message"}}`` (``error_body``, ``error_response``), ``/healthz``,
  ``/metrics`` (``ops_response`` answers both) and ``RequestMetrics``;
- the limits on a request's head and the answers to malformed requests (``systems.http_limits``,
  the same numbers as ``go/internal/serve``): every one is the envelope, never an echo of the
  request, and at most one debug line in the log;
- ``serve``: aiohttp's low-level ``web.Server`` with one handler that routes by path (no router
  or middleware on the hot path, only the checks of ``refusal``) until SIGTERM or SIGINT, then a
  graceful drain; a connection that has not sent a whole request head within 5 s, or that
  stays idle for 120 s, is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, NoReturn

import uvloop
from aiohttp import client_proto, http_parser, web, web_protocol

from systems.answers import HEALTHY as HEALTHY
from systems.answers import JSON as JSON
from systems.answers import RequestMetrics as RequestMetrics
from systems.answers import error_body as error_body
from systems.answers import error_response as error_response
from systems.answers import health_response as health_response
from systems.answers import json_response as json_response
from systems.answers import metrics_response as metrics_response
from systems.answers import ops_response as ops_response
from systems.http_limits import (
    HEADER_TIMEOUT_ENV,
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_ENV,
    IDLE_TIMEOUT_S,
    Handler,
    Server,
    SetupError,
    refusal,
    timeout_from_env,
)
from systems.overload import GreedySite

#: How long requests in flight may take to finish after SIGTERM or SIGINT.
SHUTDOWN_DRAIN_S: Final = 5.0

#: ``drain(runner, until)``: stop serving; ``until`` is when the drain time ends.
Drain = Callable[[web.ServerRunner, float], Awaitable[None]]

# --- the command line ---------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def argument_parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    """A parser that reports a bad flag as one line on stderr (no usage block), exit status 2.

    Abbreviated flags are refused: a flag is spelled as the contract spells it.
    """
    return _OneLineParser(prog=prog, description=description, allow_abbrev=False)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a host and a port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high`` (no upper bound when None)."""

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


# --- start-up -----------------------------------------------------------------------------------


def raise_fd_limit(wanted: int) -> None:
    """Raise the soft limit on open files to ``wanted`` (at most the hard limit); never lower it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def c_parser_problem(*, client: bool = False) -> str | None:
    """Why aiohttp would run a pure-Python HTTP parser (about half the speed), if so.

    Checks the parser classes the server (and with ``client``, the client) actually binds.
    """
    request_c = getattr(http_parser, "HttpRequestParserC", None)
    if request_c is None or getattr(web_protocol, "HttpRequestParser", None) is not request_c:
        return "aiohttp's C HTTP request parser is not in use (AIOHTTP_NO_EXTENSIONS set?)"
    response_c = getattr(http_parser, "HttpResponseParserC", None)
    if client and (
        response_c is None or getattr(client_proto, "HttpResponseParser", None) is not response_c
    ):
        return "aiohttp's C HTTP response parser is not in use (AIOHTTP_NO_EXTENSIONS set?)"
    return None


def run(
    prog: str, service: Callable[[], Coroutine[Any, Any, None]], *, client: bool = False
) -> int:
    """Run ``service()`` on uvloop; the process's exit status.

    1 with one line on stderr when aiohttp's C parsers are missing (``client``: the client's
    too) or the service raises OSError (e.g. the listen address is taken) or SetupError (a bad
    time-out in the environment); 0 when it returns.
    """
    problem = c_parser_problem(client=client)
    if problem is not None:
        print(f"{prog}: refusing to start: {problem}", file=sys.stderr)
        return 1
    try:
        uvloop.run(service())
    except (OSError, SetupError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0


# --- serving until told to stop -----------------------------------------------------------------


class _StopSignal:
    """Set by the first SIGTERM or SIGINT, remembering when: the drain ends 5 s after it.

    The time is taken in the signal's callback, which a loop blocked by a long task (the
    worker-pool's sync kernels) may run well before the waiting coroutine resumes.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.at: float | None = None

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        self.event.set()


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
    drain: Drain | None = None,
    handler_cancellation: bool = False,
    header_timeout: float | None = None,
    idle_timeout: float | None = None,
) -> None:
    """Serve ``handler`` on ``host:port`` (all interfaces for ``""``) until SIGTERM or SIGINT.

    It binds first, so a taken address raises OSError at once; then awaits ``ready`` (say, the
    start of a pool's workers); then prints ``listening on ADDR`` to stderr, the line that says
    the process is ready. After the first signal (or a failure) it awaits ``drain(runner,
    until)``, ``until`` being ``time.monotonic()`` 5 s after the signal; without ``drain`` it
    stops accepting and lets requests in flight finish for at most 5 s, then closes the rest.
    ``handler_cancellation`` cancels a handler whose client goes away (aiohttp's option).

    Every request passes ``refusal`` (the limits above) before ``handler``. A connection is
    closed when it has not sent a whole request head ``header_timeout`` seconds after it opened
    or after the first byte of a later request, or stays idle ``idle_timeout`` seconds after an
    answer (defaults: ``$PATTERNBENCH_HEADER_TIMEOUT_S`` and ``$PATTERNBENCH_IDLE_TIMEOUT_S``,
    else 5 and 120, as Go's ``ReadHeaderTimeout`` and ``IdleTimeout``).
    """
    if header_timeout is None:
        header_timeout = timeout_from_env(HEADER_TIMEOUT_ENV, HEADER_TIMEOUT_S)
    if idle_timeout is None:
        idle_timeout = timeout_from_env(IDLE_TIMEOUT_ENV, IDLE_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    stop = _StopSignal()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        refused = refusal(request)
        if refused is not None:
            return refused.response()
        return await handler(request)

    server = Server(
        guarded,
        header_timeout=header_timeout,
        idle_timeout=idle_timeout,
        handler_cancellation=handler_cancellation,
    )
    runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_DRAIN_S)
    await runner.setup()
    try:
        await GreedySite(runner, host or None, port, backlog=1024).start()
        if ready is not None:
            await ready()
        bound, bound_port = runner.addresses[0][:2]
        shown = f"[{bound}]" if ":" in bound else bound
        print(f"listening on {shown}:{bound_port}", file=sys.stderr, flush=True)
        await stop.event.wait()
    finally:
        await (drain or _drain)(runner, (stop.at or time.monotonic()) + SHUTDOWN_DRAIN_S)


async def _drain(runner: web.ServerRunner, until: float) -> None:
    """Stop accepting, close idle connections, let requests in flight finish until ``until``.

    Past it the rest are abandoned: the loop's teardown cancels their handlers and closes their
    connections. (aiohttp's own cleanup would wait its timeout twice, first for the handlers to
    finish, then for them to finish once told.)
    """
    cleanup = asyncio.create_task(runner.cleanup())
    done, _ = await asyncio.wait({cleanup}, timeout=max(0.0, until - time.monotonic()))
    if not done:
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup
