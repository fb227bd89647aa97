"""The OTLP/HTTP trace sink (systems/edge/collector.py) as a real process on loopback: exports
in protobuf (plain and gzipped) and in OTLP/JSON become lines of its file, read back by
systems/edge/traces.py; every refusal (400, 413, 415, 404, 405) is an answer, never a crash; it
exits 0 on SIGTERM.
"""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from systems.edge.collector import MAX_BODY
from systems.edge.traces import read_spans
from tests.integration.service_process import Proc, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
PARENT_ID = "b7ad6b7169203331"
PROTOBUF = "application/x-protobuf"


def export(name: str, *, parent: str = PARENT_ID) -> ExportTraceServiceRequest:
    """One span of service ``edge``, named ``name``."""
    span = Span(
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex(SPAN_ID),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_000,
        end_time_unix_nano=2_000,
        attributes=[KeyValue(key="http.status", value=AnyValue(int_value=200))],
    )
    service = KeyValue(key="service.name", value=AnyValue(string_value="edge"))
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[service]), scope_spans=[ScopeSpans(spans=[span])]
            )
        ]
    )


class Sink:
    def __init__(self, proc: Proc, addr: str, out: Path) -> None:
        self.proc, self.addr, self.out = proc, addr, out

    def post(
        self, body: bytes, content_type: str | None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            conn.request("POST", "/v1/traces", body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def request(self, method: str, path: str) -> int:
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def lines(self) -> list[str]:
        return self.out.read_text("utf-8").splitlines()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    out = tmp_path / "spans.jsonl"
    proc = Proc([sys.executable, "-m", "systems.edge.collector", "--listen", "127.0.0.1:0",
                 "--out", str(out)])  # fmt: skip
    try:
        yield Sink(proc, proc.wait_listening(timeout=20)[0], out)
    finally:
        proc.stop()


def error(body: bytes) -> tuple[str, str]:
    e = json.loads(body)["error"]
    return e["code"], e["message"]


def test_protobuf_and_gzip_and_json_exports_become_lines(sink: Sink) -> None:
    status, headers, body = sink.post(export("plain").SerializeToString(), PROTOBUF)
    assert (status, headers["content-type"]) == (200, PROTOBUF)
    assert ExportTraceServiceResponse.FromString(body) == ExportTraceServiceResponse()
    zipped = gzip.compress(export("gzipped").SerializeToString())
    status, _, _ = sink.post(zipped, PROTOBUF, **{"Content-Encoding": "gzip"})
    assert status == 200
    deflated = zlib.compress(export("deflated").SerializeToString())
    assert sink.post(deflated, PROTOBUF, **{"Content-Encoding": "deflate"})[0] == 200
    # OTLP/JSON: ids in hex, enums as numbers, int64s as strings; unknown fields ignored.
    as_json = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name",
                                         "value": {"stringValue": "core"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": TRACE_ID, "spanId": SPAN_ID, "name": "from-json", "kind": 2,
                "startTimeUnixNano": "5", "endTimeUnixNano": "9", "futureField": 1,
                "status": {"code": 2}, "links": [{"traceId": TRACE_ID, "spanId": PARENT_ID}],
            }]}],
        }]
    }  # fmt: skip
    status, headers, body = sink.post(json.dumps(as_json).encode(), "application/json")
    assert (status, headers["content-type"].split(";")[0], json.loads(body)) == (
        200,
        "application/json",
        {},
    )

    lines = sink.lines()
    assert len(lines) == 4
    assert all(" " not in line for line in lines)  # compact
    (json_span,) = json.loads(lines[3])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert json_span["links"] == [{"traceId": TRACE_ID, "spanId": PARENT_ID}]
    assert json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == (
        TRACE_ID
    )
    plain, zipped_span, deflated_span, from_json = read_spans(sink.out)
    assert (plain.name, plain.trace_id, plain.span_id, plain.parent_span_id) == (
        "plain",
        TRACE_ID,
        SPAN_ID,
        PARENT_ID,
    )
    assert (plain.service, plain.kind, plain.attributes) == ("edge", "CLIENT", {"http.status": 200})
    assert (plain.start_ns, plain.end_ns) == (1_000, 2_000)
    assert (zipped_span.name, deflated_span.name) == ("gzipped", "deflated")
    assert (from_json.name, from_json.parent_span_id, from_json.service) == (
        "from-json",
        None,
        "core",
    )
    assert (from_json.kind, from_json.status, from_json.end_ns) == ("SERVER", "ERROR", 9)
    assert sink.request("GET", "/healthz") == 200


def test_every_refusal_is_an_answer(sink: Sink) -> None:
    good = export("good").SerializeToString()
    bad_json = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "zz" * 16, "spanId": SPAN_ID}]}]}]}).encode()  # fmt: skip
    short = export("short")
    short.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02"
    for body, content_type, headers, want in [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, {}, "in protobuf"),  # a length past the end
        (b"{not json", "application/json", {}, "in OTLP/JSON"),
        (b"[]", "application/json", {}, "JSON object"),
        (bad_json, "application/json", {}, "not hex"),
        (short.SerializeToString(), PROTOBUF, {}, "8-byte span id"),
        (b"\x1f\x8b not gzip at all", PROTOBUF, {"Content-Encoding": "gzip"}, "not gzip"),
        (gzip.compress(good)[:-12], PROTOBUF, {"Content-Encoding": "gzip"}, "cut short"),
    ]:
        status, _, raw = sink.post(body, content_type, **headers)
        code, message = error(raw)
        assert (status, code) == (400, "invalid_argument"), (body, raw)
        assert want in message, message
    for unsupported, coding in [
        ("text/plain", {}),
        (None, {}),
        (PROTOBUF, {"Content-Encoding": "br"}),
    ]:
        status, _, raw = sink.post(good, unsupported, **coding)
        assert (status, error(raw)[0]) == (415, "unsupported_media_type"), raw
    # Too large by its Content-Length (answered before the body is read), or once inflated.
    assert too_large(sink.addr) == 413
    bomb = gzip.compress(b"\0" * (MAX_BODY + 1))
    status, _, raw = sink.post(bomb, PROTOBUF, **{"Content-Encoding": "gzip"})
    assert (status, error(raw)[0]) == (413, "resource_exhausted")
    assert sink.request("GET", "/v1/traces") == 405
    assert sink.request("POST", "/healthz") == 405
    assert sink.request("GET", "/v1/metrics") == 404
    # Still serving, and nothing refused was written.
    assert sink.post(good, PROTOBUF)[0] == 200
    assert [s.name for s in read_spans(sink.out)] == ["good"]
    sink.proc.popen.send_signal(signal.SIGTERM)
    assert sink.proc.popen.wait(timeout=10) == 0
    assert all(line.startswith("listening on ") for line in sink.proc.log), sink.proc.log


def too_large(addr: str) -> int:
    """The status of a request whose Content-Length says 16 MiB + 1: answered before the body."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/v1/traces")
        conn.putheader("Content-Type", PROTOBUF)
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        conn.endheaders()
        conn.send(b"\x0a")
        return conn.getresponse().status
    finally:
        conn.close()


def test_an_unwritable_file_is_one_line_and_status_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = Proc([sys.executable, "-m", "systems.edge.collector", "--listen", "127.0.0.1:0",
                 "--out", str(blocker / "spans.jsonl")])  # fmt: skip
    assert proc.popen.wait(timeout=20) == 1
    assert wait_for(lambda: len(proc.log) == 1)
    assert proc.log[0].startswith("otlp-collector: "), proc.log
