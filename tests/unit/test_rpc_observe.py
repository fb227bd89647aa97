"""systems/rpc/observe.py with a fake servicer context and an in-memory span exporter: the flags,
the log line, the span (parent, name, status), the echo, and the failure line."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from systems.rpc import observe
from systems.rpc.observe import Observer, Options, Tracing, parse_options

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
PATH = "/recommendations.v1.Recommendations/Recommend"


class FakeContext:
    """The parts of ``grpc.aio.ServicerContext`` the observer reads."""

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...], remaining: float | None):
        self.metadata = metadata
        self.remaining = remaining
        self.sent: list[tuple[tuple[str, str], ...]] = []

    def time_remaining(self) -> float | None:
        return self.remaining

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.metadata

    async def send_initial_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.sent.append(metadata)


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """structlog configured as the server does, onto a buffer."""
    out = io.StringIO()
    observe.configure_logging(out)
    yield out
    structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def in_memory() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def call(observer: Observer, context: FakeContext, outcome: str | None = None) -> Any:
    """One call through ``observer.wrap``: answered "answer", or raising with ``outcome``."""

    async def behavior(request: Any, ctx: Any) -> Any:
        if outcome is not None:
            raise RuntimeError("refused")
        return "answer"

    wrapped = observer.wrap(PATH, "Recommend", behavior, lambda ctx, exc: outcome or "UNKNOWN")
    return asyncio.run(wrapped(b"", context))  # type: ignore[arg-type]


def test_a_call_is_logged_traced_and_its_request_id_echoed(log: io.StringIO) -> None:
    tracing, exporter = in_memory()
    observer = Observer(log=True, tracing=tracing)
    metadata = (("x-request-id", "r-1"), ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"))
    context = FakeContext(metadata, remaining=1.5)
    assert call(observer, context) == "answer"
    assert context.sent == [(("x-request-id", "r-1"),)]
    (line,) = lines(log)
    (span,) = exporter.get_finished_spans()
    assert line == {
        "event": "call",
        "level": "info",
        "request_id": "r-1",
        "method": "Recommend",
        "code": "OK",
        "duration_ms": line["duration_ms"],
        "deadline_remaining_ms": 1500.0,
        "trace_id": TRACE_ID,
        "span_id": f"{span.context.span_id:016x}",
        "timestamp": line["timestamp"],
    }
    assert span.name == PATH
    assert span.kind == SpanKind.SERVER
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.attributes is not None
    assert span.attributes["rpc.response.status_code"] == "OK"
    assert span.status.status_code == StatusCode.UNSET


@pytest.mark.parametrize(
    ("code", "status"),
    [("DEADLINE_EXCEEDED", StatusCode.ERROR), ("INVALID_ARGUMENT", StatusCode.UNSET)],
)
def test_a_span_is_an_error_only_for_the_server_s_faults(code: str, status: StatusCode) -> None:
    tracing, exporter = in_memory()
    with pytest.raises(RuntimeError):
        call(Observer(log=False, tracing=tracing), FakeContext((), None), outcome=code)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == status
    assert span.parent is None  # no traceparent: a root


def test_tracing_alone_neither_logs_nor_echoes(log: io.StringIO) -> None:
    tracing, _ = in_memory()
    context = FakeContext((("x-request-id", "r-1"),), remaining=None)
    call(Observer(log=False, tracing=tracing), context)
    assert context.sent == []
    assert log.getvalue() == ""


def test_without_tracing_the_line_has_no_ids(log: io.StringIO) -> None:
    context = FakeContext((("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),), remaining=None)
    call(Observer(log=True, tracing=None), context)
    (line,) = lines(log)
    assert (line["request_id"], line["deadline_remaining_ms"]) == (None, None)
    assert "trace_id" not in line
    assert context.sent == []  # no request id, nothing to echo


def test_a_failure_is_logged_with_its_request_id(log: io.StringIO) -> None:
    context = FakeContext((("x-request-id", "r-9"),), remaining=None)
    try:
        raise KeyError("bug")
    except KeyError as e:
        observe.log_failure("Recommend", "UNKNOWN", context, e)  # type: ignore[arg-type]
    (line,) = lines(log)
    assert (line["event"], line["level"], line["request_id"], line["code"]) == (
        "call failed",
        "error",
        "r-9",
        "UNKNOWN",
    )
    assert "KeyError: 'bug'" in line["exception"]


def test_the_flags_and_the_rest_of_the_command_line() -> None:
    shared = ["--listen", "127.0.0.1:0"]
    assert parse_options("p", shared) == (Options(), shared)
    options, rest = parse_options(
        "p", ["--items", "5", "--log-requests", "--delay-ms", "300", "--otlp-endpoint=http://h:1"]
    )
    assert options == Options(log_requests=True, otlp_endpoint="http://h:1/v1/traces", delay_ms=300)
    assert rest == ["--items", "5"]
    assert options.observing
    assert not Options(delay_ms=5).observing
    assert parse_options("p", ["--otlp-endpoint", "https://h/x/traces"])[0].otlp_endpoint == (
        "https://h/x/traces"
    )


@pytest.mark.parametrize("value", ["h:4318", "ftp://h", "http://", "http://h:99999"])
def test_a_bad_endpoint_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_options("p", ["--otlp-endpoint", value])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("p: error: argument --otlp-endpoint: want an http")
