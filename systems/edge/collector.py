"""An OTLP/HTTP trace sink: the spans the edge and its core export, one line a request, in a file.

    python -m systems.edge.collector --listen 127.0.0.1:4318 --out traces/spans.jsonl

``POST /v1/traces`` takes an ExportTraceServiceRequest as protobuf
(``Content-Type: application/x-protobuf``) or as OTLP/JSON (``application/json``), optionally
``Content-Encoding: gzip`` (or ``deflate``), and appends it to ``--out`` as one line of OTLP/JSON
(lowerCamelCase names, trace and span ids in hex, enums as numbers), flushed before the answer:
``200`` with an empty ExportTraceServiceResponse in the request's encoding. ``systems.edge.traces``
reads the file back.

Refused, with the envelope ``{"error": {"code", "message"}}``: a body that is not such a request
(or whose ids have the wrong length) 400; another content type or content coding 415; a body over
16 MiB (by Content-Length before reading, or once inflated) 413; another path 404, another method
405. ``GET /healthz`` answers 200. It runs on the shared aiohttp scaffold (``systems/serving.py``:
the limits on a request's head, ``listening on ADDR`` on stderr, a graceful drain on SIGTERM or
SIGINT, exit 0); a file it cannot open is one line and status 1.
"""

from __future__ import annotations

import base64
import json
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from systems import serving
from systems.answers import error_body, health_response, json_response

PROG: Final = "otlp-collector"
TRACES: Final = "/v1/traces"
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
#: The largest body taken, before and after inflating it.
MAX_BODY: Final = 16 << 20
#: The content codings read: none, or gzip or zlib's deflate (the scaffold leaves bodies as sent).
CODINGS: Final = frozenset({"", "identity", "gzip", "deflate"})
#: The id fields of spans and links, in either spelling: hex in OTLP/JSON, base64 in protobuf's
#: JSON mapping (which json_format reads and writes).
ID_FIELDS: Final = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
_COMPACT: Final = (",", ":")


class Refused(Exception):
    """An error answer: its status, code and message; ``close`` the connection after it."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close

    def response(self) -> web.Response:
        response = json_response(self.status, error_body(self.code, self.message))
        if self.close:
            response.force_close()
        return response


def bad(message: str) -> Refused:
    return Refused(400, "invalid_argument", message)


# --- OTLP/JSON's ids ----------------------------------------------------------------------------


def _spans_and_links(request: Any) -> list[dict[str, Any]]:
    """The span and link objects of a request in protobuf's JSON mapping (either field
    spelling); what is not shaped as such is skipped, for the parser to refuse."""

    def items(obj: Any, *names: str) -> list[Any]:
        if not isinstance(obj, dict):
            return []
        for name in names:
            value = obj.get(name)
            if isinstance(value, list):
                return value
        return []

    out: list[dict[str, Any]] = []
    for resource in items(request, "resourceSpans", "resource_spans"):
        for scope in items(resource, "scopeSpans", "scope_spans"):
            for span in items(scope, "spans"):
                if isinstance(span, dict):
                    out.append(span)
                    out.extend(link for link in items(span, "links") if isinstance(link, dict))
    return out


def _convert_ids(request: Any, convert: Callable[[str], str]) -> None:
    for obj in _spans_and_links(request):
        for key, value in obj.items():
            if key in ID_FIELDS and isinstance(value, str):
                obj[key] = convert(value)


def _hex_to_base64(text: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(text)).decode()
    except ValueError:
        raise bad(f"body: an id is not hex: {text[:40]!r}") from None


def _base64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()


# --- decoding and encoding ----------------------------------------------------------------------


def decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The request in ``body``, protobuf or OTLP/JSON; ``Refused`` (400) when it is not one."""
    request = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as e:
            raise bad(f"body: not an ExportTraceServiceRequest in protobuf: {e}") from None
    else:
        try:
            obj = json.loads(body)
            if not isinstance(obj, dict):
                raise ValueError("want a JSON object")
            _convert_ids(obj, _hex_to_base64)
            json_format.ParseDict(obj, request, ignore_unknown_fields=True)
        except Refused:
            raise
        # json_format raises ParseError for most, the step that failed for a few (nesting).
        except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as e:
            raise bad(f"body: not an ExportTraceServiceRequest in OTLP/JSON: {e}") from None
    _check_ids(request)
    return request


def _check_ids(request: ExportTraceServiceRequest) -> None:
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise bad(f"span {span.name!r}: want a 16-byte trace id and an 8-byte span id")
                if len(span.parent_span_id) not in (0, 8):
                    raise bad(f"span {span.name!r}: want an 8-byte parent span id, or none")


def otlp_json(request: ExportTraceServiceRequest) -> str:
    """``request`` as one line of OTLP/JSON: compact, lowerCamelCase, ids in hex, enums as
    numbers."""
    obj = json_format.MessageToDict(request, use_integers_for_enums=True)
    _convert_ids(obj, _base64_to_hex)
    return json.dumps(obj, separators=_COMPACT, ensure_ascii=False)


def answer(content_type: str) -> web.Response:
    """200 with an empty ExportTraceServiceResponse in ``content_type``'s encoding."""
    if content_type == PROTOBUF:
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, headers={"Content-Type": PROTOBUF})
    return json_response(200, b"{}")


# --- serving ------------------------------------------------------------------------------------


async def read_body(request: web.BaseRequest) -> bytes:
    """The body as sent: 413 over ``MAX_BODY`` by its Content-Length, before it is read (the
    scaffold refuses a Transfer-Encoding, so every body has one)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise Refused(413, "resource_exhausted", f"body: over {MAX_BODY} bytes", close=True)
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    try:
        return await request.content.read()
    except (ConnectionError, http_exceptions.HttpProcessingError, RequestPayloadError):
        raise Refused(400, "invalid_argument", "body: cut short", close=True) from None


def inflate(body: bytes, coding: str) -> bytes:
    """A gzip or deflate (zlib) body inflated: 413 past ``MAX_BODY``, 400 when not one."""
    inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # either header, told apart
    try:
        out = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error as e:
        raise bad(f"body: not {coding}: {e}") from None
    if len(out) > MAX_BODY:
        raise Refused(413, "resource_exhausted", f"body: over {MAX_BODY} bytes inflated")
    if not inflater.eof:
        raise bad(f"body: not {coding}: the stream is cut short")
    return out


class Collector:
    """Routes every request; appends each export to ``sink``, a line at a time."""

    def __init__(self, sink: TextIO) -> None:
        self._sink = sink

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == "/healthz":
            if method != "GET":
                return _not_allowed("GET")
            return health_response()
        if path != TRACES:
            return Refused(404, "not_found", f"no such path: {path[:100]}").response()
        if method != "POST":
            return _not_allowed("POST")
        try:
            return await self._export(request)
        except Refused as refused:
            return refused.response()

    async def _export(self, request: web.BaseRequest) -> web.Response:
        content_type = request.content_type  # the media type alone, lower-cased
        if content_type not in (PROTOBUF, JSON):
            message = f"Content-Type {content_type[:60]!r}: want {PROTOBUF} or {JSON}"
            raise Refused(415, "unsupported_media_type", message, close=True)
        coding = request.headers.get("Content-Encoding", "").strip().lower()
        if coding not in CODINGS:
            message = f"Content-Encoding {coding[:40]!r}: want gzip, deflate or none"
            raise Refused(415, "unsupported_media_type", message, close=True)
        body = await read_body(request)
        if coding in ("gzip", "deflate"):
            body = inflate(body, coding)
        export = decode(body, content_type)
        # Written and flushed at once (no await between): lines never interleave.
        self._sink.write(otlp_json(export) + "\n")
        self._sink.flush()
        return answer(content_type)


def _not_allowed(allow: str) -> web.Response:
    body = error_body("method_not_allowed", f"only {allow} is allowed here")
    return json_response(405, body, {"Allow": allow})


async def serve(host: str, port: int, out: Path) -> None:
    """Collect into ``out`` (appended to; its folder made) until SIGTERM or SIGINT."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as sink:
        await serving.serve(Collector(sink), host, port)


def main(argv: Sequence[str] | None = None) -> int:
    p = serving.argument_parser(PROG, __doc__)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", 4318))
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    host, port = a.listen
    return serving.run(PROG, lambda: serve(host, port, a.out))


if __name__ == "__main__":
    sys.exit(main())
