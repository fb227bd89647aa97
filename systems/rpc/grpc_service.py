"""The rpc pattern's gRPC server in Python: grpc.aio on uvloop, one process.

    python -m systems.rpc.grpc_service --listen 127.0.0.1:50051 \\
        --metrics-listen 127.0.0.1:9464 --items 1000 --seed 1 --max-in-flight 128 --max-lag-ms 10 \\
        [--log-requests] [--otlp-endpoint URL] [--delay-ms N]

The Recommendations service of proto/recommendations/v1 (unary Recommend, server-streaming
StreamRecommendations), the standard health service (SERVING for "" and the service's name) and
server reflection on ``--listen``; ``GET /metrics`` and ``GET /healthz`` over HTTP on
``--metrics-listen``. See ``README.md`` for the contract.

A call goes through, in order: grpc's receive limit (1 MiB: RESOURCE_EXHAUSTED, before any
Python runs); the interceptor (``Calls``), which admits it or refuses it UNAVAILABLE before its
request is decoded, and counts it in the metrics when it ends; the handler, which decodes the
request (INVALID_ARGUMENT when it is not a RecommendRequest: grpc's own deserializer would
answer UNKNOWN), validates it (INVALID_ARGUMENT with ``ranking.validate``'s message), checks the
deadline before ranking and before each message of a stream (DEADLINE_EXCEEDED), and answers.

Behind an edge: ``--log-requests`` (a JSON line per call) and ``--otlp-endpoint URL`` (a span per
call), see ``observe.py``; ``--delay-ms N``, a test knob, makes a call wait before ranking.

SIGTERM or SIGINT: the health service answers NOT_SERVING, ``server.stop(grace=5)`` refuses new
calls (UNAVAILABLE) and lets the calls in flight finish for up to 5 s (then cancels them), the
last spans are exported, the metrics server closes last, and the process exits 0. It refuses to
start (exit 1, one line) when protobuf's backend is not upb.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from systems import grpc_serving, serving
from systems.rpc import observe
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.metrics import Metrics
from systems.rpc.observe import Observer, Options, Tracing
from systems.rpc.recommender import (
    METHODS,
    OVERLOADED,
    SERVICE_NAME,
    Admission,
    Config,
    Recommender,
    pages,
    parse_args,
    protobuf_problem,
)

PROG: Final = "rpc-grpc"
#: The largest request accepted: 1 MiB, as over REST.
MAX_RECEIVE_BYTES: Final = 1 << 20
#: How long calls in flight may take to finish after SIGTERM or SIGINT.
GRACE_S: Final = 5.0
DEADLINE: Final = "the call's deadline passed"

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Context = grpc.aio.ServicerContext[bytes, Any]


def expired(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    """Whether the call has a deadline and it has passed."""
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


class Servicer:
    """The two RPCs. Requests come in as bytes (no deserializer), decoded here."""

    def __init__(self, recommender: Recommender, *, delay_ms: int = 0) -> None:
        self._rec = recommender
        self._delay_s = delay_ms / 1000

    async def _request(self, data: bytes, context: Context) -> pb.RecommendRequest:
        try:
            req = pb.RecommendRequest.FromString(data)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a RecommendRequest: {e}")
        message = Recommender.check(req)
        if message is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        if self._delay_s:
            await self._delay(context)
        if expired(context):
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE)
        return req

    async def _delay(self, context: Context) -> None:
        """``--delay-ms``: wait before ranking, DEADLINE_EXCEEDED if the deadline comes first."""
        remaining = context.time_remaining()
        if remaining is not None and remaining < self._delay_s:
            await asyncio.sleep(remaining)
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE)
        await asyncio.sleep(self._delay_s)

    async def recommend(self, data: bytes, context: Context) -> pb.RecommendResponse:
        req = await self._request(data, context)
        items = self._rec.items(self._rec.rank(req), req.features, lambda: expired(context))
        if items is None:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE)
        return pb.RecommendResponse(user_id=req.user_id, items=items)

    async def stream(self, data: bytes, context: Context) -> None:
        """``page_size`` items a message (1 when 0), the deadline checked before each."""
        req = await self._request(data, context)
        rec = self._rec

        def past() -> bool:
            return expired(context)

        for n, chunk in enumerate(pages(rec.rank(req), req.page_size)):
            items = rec.items(chunk, req.features, past)  # None: the deadline passed
            if items is None:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE)
            await context.write(pb.RecommendPage(page=n, items=items))

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Recommend": grpc.unary_unary_rpc_method_handler(
                    self.recommend, response_serializer=pb.RecommendResponse.SerializeToString
                ),
                "StreamRecommendations": grpc.unary_stream_rpc_method_handler(
                    self.stream, response_serializer=pb.RecommendPage.SerializeToString
                ),
            },
        )


class Calls(grpc.aio.ServerInterceptor):
    """Admission and metrics for the Recommendations service's calls (health checks and
    reflection pass untouched), and the ``observer``'s log line, span and echo around them when
    there is one: each RPC's handler is wrapped once, on its first call."""

    def __init__(
        self, admission: Admission, metrics: Metrics, observer: Observer | None = None
    ) -> None:
        self._admission = admission
        self._metrics = metrics
        self._observer = observer
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        path = handler_call_details.method
        wrapped = self._wrapped.get(path)
        if wrapped is not None:
            return wrapped
        inner = await continuation(handler_call_details)
        name = METHODS.get(path)
        if inner is None or name is None:
            return inner
        if inner.unary_unary is not None:
            behavior: Any = inner.unary_unary
            make = grpc.unary_unary_rpc_method_handler
        else:
            behavior = inner.unary_stream
            make = grpc.unary_stream_rpc_method_handler
        assert inspect.iscoroutinefunction(behavior), "the servicer's methods are coroutines"
        behavior = self._counted(name, behavior)
        if self._observer is not None:
            behavior = self._observer.wrap(path, name, behavior, _outcome)
        wrapped = self._wrapped[path] = make(
            behavior,
            request_deserializer=inner.request_deserializer,
            response_serializer=inner.response_serializer,
        )
        return wrapped

    def _counted(self, name: str, behavior: Behavior) -> Behavior:
        admission, metrics = self._admission, self._metrics

        async def counted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            if not admission.enter():
                metrics.observe(name, "UNAVAILABLE", time.perf_counter() - start)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"overloaded: {OVERLOADED}")
            code = "UNKNOWN"  # what grpc.aio answers for an exception of the handler's
            try:
                answer = await behavior(request, context)
                code = "OK"
                return answer
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except (asyncio.CancelledError, Exception) as e:
                # Cancelled by its client or its deadline (the handler's task is cancelled, or a
                # write or abort fails: grpc.aio drops that failure), or a bug (grpc.aio: UNKNOWN).
                code = _ended(context)
                if code == "UNKNOWN":
                    observe.log_failure(name, code, context, e)
                raise
            finally:
                admission.leave()
                metrics.observe(name, code, time.perf_counter() - start)

        return counted


def _outcome(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> str:
    """The code of a call whose handler raised ``exc``."""
    if isinstance(exc, grpc.aio.AbortError):
        return _code_name(context.code())
    return _ended(context)


def _ended(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The code of a call whose handler ended with an exception that is not an abort."""
    if expired(context):
        return "DEADLINE_EXCEEDED"
    return "CANCELLED" if context.cancelled() else "UNKNOWN"


def _code_name(code: object) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


async def run(config: Config, options: Options | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (at most 5 s for calls in flight)."""
    options = options or Options()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    recommender = Recommender(config.items, config.seed)
    admission = Admission(config.max_in_flight, config.max_lag_ms)
    metrics = Metrics(lambda: admission.in_flight)
    tracing = Tracing.to_endpoint(options.otlp_endpoint) if options.otlp_endpoint else None
    observer = Observer(log=options.log_requests, tracing=tracing) if options.observing else None
    server = grpc.aio.server(
        interceptors=[Calls(admission, metrics, observer)],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.so_reuseport", 0),  # a taken port is an error, not a second listener
        ],
    )
    server.add_generic_rpc_handlers((Servicer(recommender, delay_ms=options.delay_ms).handler(),))
    healthy = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await healthy.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(healthy, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = grpc_serving.address(config.host, config.port)
    grpc_serving.check_bind(config.host, config.port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # lost a race for the port (grpc has logged why)
        raise OSError(f"cannot listen on {address}") from None
    runner = await grpc_serving.serve_metrics(
        metrics.registry, config.metrics_host, config.metrics_port
    )
    try:
        await server.start()
        admission.start()
        metrics_addr = runner.addresses[0][:2]
        print(
            f"listening on {grpc_serving.address(config.host, port)}\n"
            f"listening on {grpc_serving.address(metrics_addr[0], metrics_addr[1])}",
            file=sys.stderr,
            flush=True,
        )
        await stopping.wait()
        await healthy.enter_graceful_shutdown()
    finally:
        # New calls are refused (UNAVAILABLE); those in flight get GRACE_S, then are cancelled.
        await server.stop(grace=GRACE_S)
        admission.stop()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), timeout=2.0)


def main(argv: Sequence[str] | None = None) -> int:
    options, rest = observe.parse_options(PROG, argv)
    config = parse_args(PROG, __doc__, rest, default_port=50051, metrics=True)
    problem = protobuf_problem()
    if problem is not None:
        print(f"{PROG}: refusing to start: {problem}", file=sys.stderr)
        return 1
    observe.configure_logging()
    # The scaffold's runner: uvloop, one line and status 1 on OSError or SetupError, and aiohttp's
    # C parser required (the metrics server is aiohttp too).
    return serving.run(PROG, lambda: run(config, options))


if __name__ == "__main__":
    sys.exit(main())
