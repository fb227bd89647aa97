"""What every Python gRPC service here shares (as ``systems/serving.py`` is for HTTP ones):

- ``address``: ``host:port`` as grpc's ``add_insecure_port`` and the ``listening on`` line write
  it (``[v6]:port``; all interfaces for ``""``);
- ``check_bind``: a taken address as one line (OSError) before grpc logs lines of its own;
- ``serve_metrics``: ``GET /metrics`` and ``GET /healthz`` over HTTP on a port of their own
  (``answers.ops_response``: 405 to another method, 404 elsewhere), on the scaffold's limits
  and time-outs, accepting as ``systems.overload.GreedySite`` does.
"""

from __future__ import annotations

import socket

from aiohttp import web
from prometheus_client import CollectorRegistry

from systems.answers import ops_response
from systems.http_limits import (
    HEADER_TIMEOUT_ENV,
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_ENV,
    IDLE_TIMEOUT_S,
    Server,
    refusal,
    timeout_from_env,
)
from systems.overload import GreedySite


def address(host: str, port: int) -> str:
    """``host:port``, IPv6 hosts in brackets, ``0.0.0.0`` for all interfaces."""
    host = host or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_bind(host: str, port: int) -> None:
    """OSError, one line, when ``host:port`` cannot be listened on: grpc would say so in a log
    line of its own first. Port 0 (any free port) always can."""
    if port == 0:
        return
    try:
        family, kind, proto, _, bound = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
            sock.bind(bound)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise OSError(f"cannot listen on {address(host, port)}: {reason}") from None


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> web.ServerRunner:
    """``GET /metrics`` (``registry``) and ``GET /healthz`` over HTTP, until the runner is
    cleaned up."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        refused = refusal(request)
        if refused is not None:
            return refused.response()
        return ops_response(request.method, request.path, registry)

    server = Server(
        handle,
        header_timeout=timeout_from_env(HEADER_TIMEOUT_ENV, HEADER_TIMEOUT_S),
        idle_timeout=timeout_from_env(IDLE_TIMEOUT_ENV, IDLE_TIMEOUT_S),
        handler_cancellation=False,
    )
    runner = web.ServerRunner(server, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await GreedySite(runner, host or None, port, backlog=128).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
