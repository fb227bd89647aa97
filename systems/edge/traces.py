"""The spans in a trace sink's file (``systems/edge/collector.py``: one OTLP/JSON export request a
line), for tests and reports: ``read_spans(path)``.

A line that is not such a request raises ``TraceFileError``, one line naming the file and the
line: ``spans.jsonl:3: not JSON: ...``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: OTLP's span kinds by number (``Span.SpanKind``), without their ``SPAN_KIND_`` prefix.
KINDS: Final = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
#: OTLP's status codes by number (``Status.StatusCode``), without their ``STATUS_CODE_`` prefix.
STATUSES: Final = ("UNSET", "OK", "ERROR")


class TraceFileError(ValueError):
    """A line of a trace file that is not an OTLP/JSON export request."""


@dataclass(frozen=True, slots=True)
class Span:
    """One span as exported."""

    trace_id: str
    """32 hex digits."""
    span_id: str
    """16 hex digits."""
    parent_span_id: str | None
    """16 hex digits; None for a root span."""
    name: str
    service: str
    """The ``service.name`` of the span's resource ("" when it has none)."""
    kind: str
    """``SERVER``, ``CLIENT``, ``INTERNAL``, ``PRODUCER``, ``CONSUMER`` or ``UNSPECIFIED``."""
    attributes: Mapping[str, Any]
    """Plain values: str, int, float, bool, bytes, lists and dicts of them."""
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    """``UNSET``, ``OK`` or ``ERROR``."""


def read_spans(path: str | Path) -> list[Span]:
    """Every span in the file, in the order written."""
    spans: list[Span] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                spans.extend(_spans(json.loads(line)))
            except json.JSONDecodeError as e:
                raise TraceFileError(f"{path}:{number}: not JSON: {e}") from None
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                reason = f"no field {e}" if isinstance(e, KeyError) else str(e)
                message = f"{path}:{number}: not an OTLP/JSON export: {reason}"
                raise TraceFileError(message) from None
    return spans


def _spans(request: Any) -> Iterator[Span]:
    if not isinstance(request, dict):
        raise TypeError("want a JSON object")
    for resource_spans in request.get("resourceSpans", []):
        resource = attributes(resource_spans.get("resource", {}).get("attributes", []))
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.get("scopeSpans", []):
            for s in scope_spans.get("spans", []):
                status = s.get("status", {}).get("code", 0)
                yield Span(
                    trace_id=_id(s["traceId"], 16, "traceId"),
                    span_id=_id(s["spanId"], 8, "spanId"),
                    parent_span_id=_id(s.get("parentSpanId", ""), 8, "parentSpanId") or None,
                    name=str(s["name"]),
                    service=str(service),
                    kind=_enum(s.get("kind", 0), KINDS, "SPAN_KIND_"),
                    attributes=attributes(s.get("attributes", [])),
                    start_ns=int(s["startTimeUnixNano"]),
                    end_ns=int(s["endTimeUnixNano"]),
                    status=_enum(status, STATUSES, "STATUS_CODE_"),
                )


def _id(text: object, size: int, name: str) -> str:
    """A hex id of ``size`` bytes ("" for none)."""
    if isinstance(text, str) and len(text) in (0, 2 * size):
        try:
            bytes.fromhex(text)
            return text.lower()
        except ValueError:
            pass
    raise ValueError(f"{name}: want {2 * size} hex digits, got {text!r:.60}")


def _enum(value: object, names: tuple[str, ...], prefix: str) -> str:
    """An enum's name without ``prefix``: OTLP/JSON writes its number, protobuf's JSON mapping
    may write its name."""
    if isinstance(value, str) and value.removeprefix(prefix) in names:
        return value.removeprefix(prefix)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    raise ValueError(f"not a {prefix}* value: {value!r:.60}")


def attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP's ``KeyValue`` list as a dict of plain values."""
    return {pair["key"]: value(pair.get("value", {})) for pair in pairs}


def value(any_value: dict[str, Any]) -> Any:
    """OTLP's ``AnyValue`` as a plain value (int64s come as strings in JSON)."""
    if "stringValue" in any_value:
        return str(any_value["stringValue"])
    if "boolValue" in any_value:
        return bool(any_value["boolValue"])
    if "intValue" in any_value:
        return int(any_value["intValue"])
    if "doubleValue" in any_value:
        return float(any_value["doubleValue"])
    if "bytesValue" in any_value:
        try:
            return base64.b64decode(any_value["bytesValue"], validate=True)
        except binascii.Error as e:
            raise ValueError(f"bytesValue: not base64: {e}") from None
    if "arrayValue" in any_value:
        return [value(v) for v in any_value["arrayValue"].get("values", [])]
    if "kvlistValue" in any_value:
        return attributes(any_value["kvlistValue"].get("values", []))
    return None
