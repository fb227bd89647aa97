"""systems/edge/traces.py: the spans of a trace sink's file, as the sink writes them
(``collector.otlp_json``), and one clear line for a line that is not an export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from systems.edge.collector import otlp_json
from systems.edge.traces import TraceFileError, read_spans

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LIST = AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=2)]))


def span(name: str, span_id: str, parent: str = "", **fields: object) -> Span:
    return Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        start_time_unix_nano=10,
        end_time_unix_nano=20,
        **fields,  # type: ignore[arg-type]
    )


def export(service: str, *spans: Span) -> ExportTraceServiceRequest:
    attribute = KeyValue(key="service.name", value=AnyValue(string_value=service))
    resource = Resource(attributes=[attribute])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def test_spans_come_back_as_written(tmp_path: Path) -> None:
    values = [
        KeyValue(key="s", value=AnyValue(string_value="x")),
        KeyValue(key="i", value=AnyValue(int_value=1 << 40)),
        KeyValue(key="f", value=AnyValue(double_value=0.5)),
        KeyValue(key="b", value=AnyValue(bool_value=True)),
        KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(key="list", value=LIST),
    ]
    edge = span("GET /v1/recommend", "00f067aa0ba902b7", kind=Span.SPAN_KIND_SERVER)
    call = span("call core", "b7ad6b7169203331", "00f067aa0ba902b7", kind=Span.SPAN_KIND_CLIENT,
                attributes=values, status=Status(code=Status.STATUS_CODE_ERROR))  # fmt: skip
    core = span("/recommendations.v1.Recommendations/Recommend", "1111111111111111",
                "b7ad6b7169203331")  # fmt: skip
    path = tmp_path / "spans.jsonl"
    path.write_text(
        otlp_json(export("edge", edge, call)) + "\n\n" + otlp_json(export("core-python", core))
    )
    first, second, third = read_spans(path)
    assert (first.parent_span_id, first.kind, first.service, first.status) == (
        None,
        "SERVER",
        "edge",
        "UNSET",
    )
    assert (second.span_id, second.parent_span_id, second.kind, second.status) == (
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
        "CLIENT",
        "ERROR",
    )
    assert second.attributes == {
        "s": "x", "i": 1 << 40, "f": 0.5, "b": True, "raw": b"\x00\xff", "list": [2],
    }  # fmt: skip
    assert (third.trace_id, third.service, third.kind, third.start_ns, third.end_ns) == (
        TRACE,
        "core-python",
        "UNSPECIFIED",
        10,
        20,
    )
    assert read_spans(tmp_path / "spans.jsonl") == read_spans(str(path))


def test_an_empty_export_has_no_spans(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text("{}\n")
    assert read_spans(path) == []


GOOD_SPAN = {"traceId": TRACE, "spanId": "00f067aa0ba902b7", "name": "n",
             "startTimeUnixNano": "1", "endTimeUnixNano": "2"}  # fmt: skip


def spans_line(*, drop: str = "", **changes: object) -> str:
    fields = {k: v for k, v in {**GOOD_SPAN, **changes}.items() if k != drop}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"resourceSpans": [', "not JSON"),
        ("[1, 2]", "want a JSON object"),
        (spans_line(traceId="zz" * 16), "traceId: want 32 hex digits"),
        (spans_line(spanId="abcd"), "spanId: want 16 hex digits"),
        (spans_line(kind=9), "not a SPAN_KIND_* value: 9"),
        (spans_line(startTimeUnixNano="soon"), "invalid literal"),
        (spans_line(drop="spanId"), "no field 'spanId'"),
        (json.dumps({"resourceSpans": 3}), "not iterable"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text(spans_line() + "\n" + line + "\n")
    with pytest.raises(TraceFileError) as e:
        read_spans(path)
    message = str(e.value)
    assert message.startswith(f"{path}:2: "), message
    assert reason in message
    assert "\n" not in message
