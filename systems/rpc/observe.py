"""What the rpc pattern's gRPC server (``grpc_service.py``) records of its calls when asked, for
an edge in front of it (``go/cmd/edge``): its own flags, a JSON log line per call, a span per
call, and the request id echoed back.

- ``--log-requests``: one JSON line per call on stderr (structlog): ``event`` ``"call"``,
  ``request_id`` (the metadata ``x-request-id``, or null), ``method`` (the metrics' label),
  ``code`` (the gRPC code's name), ``duration_ms``, ``deadline_remaining_ms`` (at the call's
  arrival; null without a deadline), ``trace_id`` and ``span_id`` when tracing, ``level``,
  ``timestamp`` (ISO 8601, UTC).
- ``--otlp-endpoint URL``: a SERVER span per call, named by the call's path
  (``/recommendations.v1.Recommendations/Recommend``), child of the W3C ``traceparent`` (and
  ``tracestate``) the call carries, exported in batches over OTLP/HTTP (protobuf) as service
  ``core-python``; its status is ERROR for the codes that are the server's fault (semantic
  conventions: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS),
  unset otherwise. The last spans are flushed on graceful exit.
- With ``--log-requests``, a call's ``x-request-id`` also comes back in its initial metadata
  (not with tracing alone: the spans' cost is measured without it).
- ``--delay-ms N``: a test knob, read by the servicer: wait N ms before ranking.

Without them the server does none of this: the interceptor wraps the RPCs without an
``Observer``, so a call costs what it did before. A call that fails with an exception (grpc
answers UNKNOWN: a bug) is logged, with its request id, flags or not (``log_failure``).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn

import grpc
import structlog
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from systems import json_logs, serving

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

REQUEST_ID: Final = "x-request-id"
#: The resource's ``service.name`` of the spans.
SERVICE: Final = "core-python"
#: Where spans go when ``--otlp-endpoint`` has no path: OTLP/HTTP's traces path.
TRACES_PATH: Final = "/v1/traces"
#: How long one export may take (at exit too: it bounds the flush).
EXPORT_TIMEOUT_S: Final = 3.0
#: --delay-ms at most: a minute.
MAX_DELAY_MS: Final = 60_000
#: The gRPC codes that mark a server span ERROR (OpenTelemetry's semantic conventions for gRPC).
SERVER_FAULTS: Final = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)

Metadata = Iterable[tuple[str, str | bytes]]
Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Awaitable[Any]]
#: The code of a call whose handler raised: ``outcome(context, exc)``.
Outcome = Callable[[Context, BaseException], str]

# --- the flags ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """The gRPC server's flags beyond the ones both Python servers share."""

    log_requests: bool = False
    """``--log-requests``: a JSON line per call on stderr."""
    otlp_endpoint: str = ""
    """``--otlp-endpoint``: the OTLP/HTTP traces URL spans go to; empty: no tracing."""
    delay_ms: int = 0
    """``--delay-ms``: how long a call waits before ranking (a test knob: the slow core)."""

    @property
    def observing(self) -> bool:
        return self.log_requests or bool(self.otlp_endpoint)


class _OptionsParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and status 2, as the shared flags
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_options(prog: str, argv: Sequence[str] | None) -> tuple[Options, list[str]]:
    """This module's flags, and the rest of ``argv`` for ``recommender.parse_args`` (which
    refuses what neither knows, and answers ``-h``)."""
    p = _OptionsParser(prog=prog, add_help=False, allow_abbrev=False)
    p.add_argument("--log-requests", action="store_true")
    p.add_argument("--otlp-endpoint", type=otlp_url, default="")
    p.add_argument("--delay-ms", type=serving.int_in(0, MAX_DELAY_MS), default=0)
    a, rest = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    return Options(a.log_requests, a.otlp_endpoint, a.delay_ms), rest


def otlp_url(text: str) -> str:
    """An argparse ``type``: an http(s) URL; OTLP's ``/v1/traces`` when it has no path."""
    if not text:
        return ""
    try:
        url = urllib.parse.urlsplit(text)
        url.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        url = urllib.parse.urlsplit("")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(f"want an http:// or https:// URL, got {text!r}")
    return text if url.path not in ("", "/") else url._replace(path=TRACES_PATH).geturl()


# --- the log ------------------------------------------------------------------------------------


configure_logging = json_logs.configure


def request_id(metadata: Metadata | None) -> str | None:
    """The call's ``x-request-id``, None without one."""
    for key, value in metadata or ():
        if key == REQUEST_ID and isinstance(value, str):
            return value
    return None


def log_failure(method: str, code: str, context: Context, exc: BaseException) -> None:
    """An error line for a call that ended in ``exc`` and ``code`` (UNKNOWN: a bug)."""
    structlog.get_logger().error(
        "call failed",
        request_id=request_id(context.invocation_metadata()),
        method=method,
        code=code,
        exc_info=exc,
    )


# --- tracing ------------------------------------------------------------------------------------


class _MetadataGetter(Getter[Metadata]):
    """W3C trace context from gRPC metadata (lower-case keys; binary values skipped)."""

    def get(self, carrier: Metadata, key: str) -> list[str] | None:
        values = [v for k, v in carrier if k == key and isinstance(v, str)]
        return values or None

    def keys(self, carrier: Metadata) -> list[str]:
        return [k for k, _ in carrier]


class Tracing:
    """A tracer whose spans go to ``provider``'s processors; ``shutdown()`` flushes them."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self.tracer = provider.get_tracer(__name__)
        self.propagator = TraceContextTextMapPropagator()
        self.getter = _MetadataGetter()

    @classmethod
    def to_endpoint(cls, url: str) -> Tracing:
        """Batches of spans over OTLP/HTTP (protobuf) to ``url``, as service ``core-python``."""
        # Imported here: the SDK and its exporter cost a tenth of a second at start-up.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
        exporter = OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    def shutdown(self) -> None:
        """Export the spans not yet sent (blocks, at most about ``EXPORT_TIMEOUT_S``)."""
        self._provider.shutdown()


# --- a call -------------------------------------------------------------------------------------


class Call:
    """One call being observed, from ``Observer.begin`` to ``Observer.end``."""

    __slots__ = ("method", "remaining_ms", "request_id", "span", "start")

    def __init__(
        self,
        start: float,
        method: str,
        request_id: str | None,
        remaining_ms: float | None,
        span: trace.Span | None,
    ) -> None:
        self.start = start
        """``time.perf_counter()`` at the call's arrival."""
        self.method = method
        self.request_id = request_id
        self.remaining_ms = remaining_ms
        """The time left to its deadline at its arrival, in ms (None: no deadline)."""
        self.span = span


class Observer:
    """Logs (``log``) and traces (``tracing``) the calls it is given at their start and end."""

    def __init__(self, *, log: bool, tracing: Tracing | None) -> None:
        self._log = structlog.get_logger() if log else None
        self._tracing = tracing

    def wrap(self, path: str, method: str, behavior: Behavior, outcome: Outcome) -> Behavior:
        """``behavior``, an RPC's handler, with the call logged (its request id echoed) and
        traced."""
        echo = self._log is not None

        async def observed(request: Any, context: Context) -> Any:
            call = self.begin(path, method, context)
            code = "UNKNOWN"
            try:
                if echo and call.request_id is not None:
                    await context.send_initial_metadata(((REQUEST_ID, call.request_id),))
                answer = await behavior(request, context)
                code = "OK"
                return answer
            except BaseException as e:
                code = outcome(context, e)
                raise
            finally:
                self.end(call, code)

        return observed

    def begin(self, path: str, method: str, context: Context) -> Call:
        """A call of ``path`` (``method`` its metrics label) arriving now."""
        start = time.perf_counter()
        remaining = context.time_remaining()
        metadata = tuple(context.invocation_metadata() or ())
        span = None
        if self._tracing is not None:
            t = self._tracing
            parent = t.propagator.extract(metadata, getter=t.getter)
            span = t.tracer.start_span(
                path,
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system.name": "grpc", "rpc.method": path.removeprefix("/")},
            )
        remaining_ms = None if remaining is None else remaining * 1000
        return Call(start, method, request_id(metadata), remaining_ms, span)

    def end(self, call: Call, code: str) -> None:
        duration_ms = (time.perf_counter() - call.start) * 1000
        span = call.span
        ids: dict[str, str] = {}
        if span is not None:
            span.set_attribute("rpc.response.status_code", code)
            if code in SERVER_FAULTS:
                span.set_status(trace.StatusCode.ERROR, code)
            span.end()
            ctx = span.get_span_context()
            ids = {"trace_id": trace.format_trace_id(ctx.trace_id),
                   "span_id": trace.format_span_id(ctx.span_id)}  # fmt: skip
        if self._log is not None:
            self._log.info(
                "call",
                request_id=call.request_id,
                method=call.method,
                code=code,
                duration_ms=round(duration_ms, 3),
                deadline_remaining_ms=call.remaining_ms,
                **ids,
            )
