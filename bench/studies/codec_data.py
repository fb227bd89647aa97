"""The codec study's measurements read from both tools, and their layout in `Study`.

The table is bench/studies/codec_spec.py's.

Both tools name every benchmark by size (bytes of protobuf the message is built to), codec and
op, and report the bytes its codec writes or reads per message: pytest-benchmark in each
benchmark's `extra_info` (`size`, `items`, `features`, `codec`, `op`, `bytes`, `proto_bytes`),
`go test -bench` in its sub-benchmark name (`size=S/items=I/features=F/codec=C/op=O`) and a
`B/msg` metric. A handler benchmark (one call of a server's own work, in process: decode the
request, rank, build and encode the answer) is named by its request and codec instead:
`extra_info` `op` "handler", `limit`, `features`, `codec`, `bytes` (the answer's); in Go
`handler=NAME/limit=L/features=F/codec=C` with `B/msg`.

A codec study is stored as a `Study` of kind "codec":

- one **series** per language, codec and op (`python protobuf encode`): time per message (µs,
  the median over pytest-benchmark's rounds or go's `-count` samples, with its bootstrap
  interval) against the size asked, in bytes. Series metadata: `language`, `codec`, `op`,
  `source` (pytest-benchmark or go-bench); each point's: `bytes` (what this codec writes or
  reads per message), `proto_bytes` (the message's protobuf size), `items`, `features`,
  `ns_per_byte` and `mb_per_s` (over `bytes`);
- **estimates** `handler <language>/<codec>`: one handler call's time, µs (the median with its
  interval, as a series' point);
- **metadata**: `sizes`, `cpus`, `files` (the tools' own output kept in the study's folder),
  `handler` (the request asked: `limit`, `features`; absent when none) and `handlers` (each
  handler figure's `language`, `codec`, `limit`, `features`, `bytes`, `source`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.models import Axis, Estimate, Series, SeriesPoint, Study
from bench.stats.confidence import median_ci
from bench.studies.base import add_point
from bench.studies.pools_go import GoBenchLine

KIND = "codec"
HANDLER = "handler "
#: The calls/s the report sets each implementation's CPU per call against, unless the table says.
GOAL_CALLS_S = 10_000.0
#: How the report names a codec and a language; any other by its own name.
CODEC_NAMES = {"protobuf": "protobuf", "json": "JSON", "json-dict": "json-dict"}
LANGUAGE_NAMES = {"python": "Python", "go": "Go"}
SIZE = Axis(name="message size", unit="bytes")
TIME = Axis(name="time per message", unit="µs")


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One op of one codec on one message, in one language."""

    language: str
    codec: str
    op: str
    size: int
    """The protobuf size asked for; the message's own is `proto_bytes`."""
    items: int
    features: int
    bytes: int
    """What this codec writes (encode) or reads (decode) per message."""
    proto_bytes: int
    time_us: Estimate
    source: str

    @property
    def ns_per_byte(self) -> float:
        return 1000 * self.time_us.median / self.bytes if self.bytes else float("nan")

    @property
    def mb_per_s(self) -> float:
        """Bytes per µs is MB/s (10^6 bytes a second)."""
        return self.bytes / self.time_us.median if self.time_us.median > 0 else float("nan")


@dataclass(frozen=True, kw_only=True)
class HandlerCall:
    """One call of a server's own work in process, one language and codec: decode the request,
    rank, build the answer and encode it."""

    language: str
    codec: str
    limit: int
    features: int
    bytes: int
    """The answer's, in this codec."""
    time_us: Estimate
    source: str

    @property
    def key(self) -> str:
        return f"{HANDLER}{self.language}/{self.codec}"


@dataclass(frozen=True, kw_only=True)
class CodecResults:
    sizes: list[int]
    cpus: list[int]
    measurements: list[Measurement]
    handlers: list[HandlerCall] = field(default_factory=list)
    handler: tuple[int, int] | None = None
    """The handler's request asked, (limit, features); None: none asked."""
    goal_calls_s: float = GOAL_CALLS_S
    errors: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


class CodecDataError(Exception):
    """A tool's output that cannot be read as the codec benchmarks; one line."""


def estimate_us(seconds: list[float]) -> Estimate:
    """The median of per-call times (seconds) in µs, with its interval; the bootstrap's
    resamples shrink as the rounds grow (thousands of rounds of a fast call are common)."""
    resamples = min(9999, max(999, 2_000_000 // max(1, len(seconds))))
    e = median_ci([s * 1e6 for s in seconds], resamples=resamples)
    return Estimate(median=e.median, low=e.low, high=e.high, n=e.n)


def _int(found: dict[str, Any], key: str, where: str) -> int:
    value = found.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CodecDataError(f"{where}: no {key}")
    try:
        return int(value)
    except ValueError:
        raise CodecDataError(f"{where}: {key} {value!r} is not a whole number") from None


def read_pytest_json(path: Path) -> tuple[list[Measurement], list[HandlerCall]]:
    """Every benchmark of a pytest-benchmark JSON file (`--benchmark-json`): the per-call time
    of each round (`stats.data`), or its median alone in a file saved without the data; the
    codecs' ops first, the handler calls second."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = doc["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CodecDataError(f"{path.name}: not pytest-benchmark JSON: {e}") from None
    found: list[Measurement] = []
    handlers: list[HandlerCall] = []
    for bench in benchmarks:
        where = f"{path.name}: {bench.get('name', '?')}"
        extra, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
        data = stats.get("data") or ([stats["median"]] if "median" in stats else [])
        if not data or not all(isinstance(v, int | float) and v > 0 for v in data):
            raise CodecDataError(f"{where}: no timings")
        codec, op = extra.get("codec"), extra.get("op")
        if not isinstance(codec, str) or not isinstance(op, str):
            raise CodecDataError(f"{where}: extra_info has no codec and op")
        language = str(extra.get("language", "python"))
        time_us = estimate_us([float(v) for v in data])
        if op == "handler":
            handlers.append(HandlerCall(language=language, codec=codec,
                                        limit=_int(extra, "limit", where),
                                        features=_int(extra, "features", where),
                                        bytes=_int(extra, "bytes", where), time_us=time_us,
                                        source="pytest-benchmark"))  # fmt: skip
            continue
        found.append(
            Measurement(
                language=language,
                codec=codec,
                op=op,
                size=_int(extra, "size", where),
                items=_int(extra, "items", where),
                features=_int(extra, "features", where),
                bytes=_int(extra, "bytes", where),
                proto_bytes=_int(extra, "proto_bytes", where),
                time_us=time_us,
                source="pytest-benchmark",
            )
        )
    return found, handlers


def _where(line: GoBenchLine) -> str:
    where = f"{line.name}/{'/'.join(f'{k}={v}' for k, v in line.fields.items())}"
    if "B/msg" not in line.metrics:
        raise CodecDataError(f"{where}: no B/msg")
    return where


def go_measurements(lines: Iterable[GoBenchLine]) -> list[Measurement]:
    """One measurement per sub-benchmark of a codec's op (handler calls aside), its `-count`
    samples (ns/op) pooled."""
    samples: dict[tuple[str, str, int, int, int], list[float]] = {}
    sizes: dict[tuple[str, str, int, int, int], int] = {}
    for line in lines:
        f = line.fields
        if "handler" in f:
            continue
        where = _where(line)
        key = (f.get("codec", ""), f.get("op", ""), _int(f, "size", where),
               _int(f, "items", where), _int(f, "features", where))  # fmt: skip
        if not key[0] or not key[1]:
            raise CodecDataError(f"{where}: no codec and op")
        samples.setdefault(key, []).append(line.ns_per_op / 1e9)
        sizes[key] = round(line.metrics["B/msg"])
    proto = {k[2]: sizes[k] for k in sizes if k[0] == "protobuf"}
    return [
        Measurement(
            language="go",
            codec=codec,
            op=op,
            size=size,
            items=items,
            features=features,
            bytes=sizes[key],
            proto_bytes=proto.get(size, 0),
            time_us=estimate_us(values),
            source="go-bench",
        )
        for key, values in samples.items()
        for codec, op, size, items, features in [key]
    ]


def go_handlers(lines: Iterable[GoBenchLine]) -> list[HandlerCall]:
    """One figure per handler sub-benchmark (`handler=…/limit=L/features=F/codec=C`), its
    `-count` samples pooled."""
    samples: dict[tuple[str, int, int], list[float]] = {}
    sizes: dict[tuple[str, int, int], int] = {}
    for line in lines:
        f = line.fields
        if "handler" not in f:
            continue
        where = _where(line)
        key = (f.get("codec", ""), _int(f, "limit", where), _int(f, "features", where))
        if not key[0]:
            raise CodecDataError(f"{where}: no codec")
        samples.setdefault(key, []).append(line.ns_per_op / 1e9)
        sizes[key] = round(line.metrics["B/msg"])
    return [
        HandlerCall(language="go", codec=codec, limit=limit, features=features,
                    bytes=sizes[key], time_us=estimate_us(values), source="go-bench")
        for key, values in samples.items()
        for codec, limit, features in [key]
    ]  # fmt: skip


def _handler_meta(h: HandlerCall) -> dict[str, Any]:
    return {"language": h.language, "codec": h.codec, "limit": h.limit,
            "features": h.features, "bytes": h.bytes, "source": h.source}  # fmt: skip


def to_study(name: str, spec: dict[str, Any], results: CodecResults) -> Study:
    series: dict[tuple[str, str, str], Series] = {}
    for m in sorted(results.measurements, key=lambda m: m.size):
        point = SeriesPoint(
            x=m.size,
            y=m.time_us,
            metadata={"bytes": m.bytes, "proto_bytes": m.proto_bytes, "items": m.items,
                      "features": m.features, "ns_per_byte": m.ns_per_byte,
                      "mb_per_s": m.mb_per_s},
        )  # fmt: skip
        first = functools.partial(
            Series,
            label=f"{m.language} {m.codec} {m.op}",
            implementation=m.language,
            x=SIZE,
            y=TIME,
            points=[],
            metadata={"language": m.language, "codec": m.codec, "op": m.op, "source": m.source},
        )
        add_point(series, (m.language, m.codec, m.op), point, first)
    meta: dict[str, Any] = {"sizes": results.sizes, "cpus": results.cpus, "files": results.files,
                            "goal_calls_s": results.goal_calls_s}  # fmt: skip
    if results.handler is not None:
        meta["handler"] = {"limit": results.handler[0], "features": results.handler[1]}
    if results.handlers:
        meta["handlers"] = [_handler_meta(h) for h in results.handlers]
    return Study(
        kind=KIND,
        name=name,
        spec=spec,
        series=list(series.values()),
        estimates={h.key: h.time_us for h in results.handlers},
        errors=results.errors,
        metadata=meta,
    )


def from_study(study: Study) -> CodecResults:
    measurements = [
        Measurement(
            language=str(s.metadata.get("language", s.implementation)),
            codec=str(s.metadata["codec"]),
            op=str(s.metadata["op"]),
            size=round(p.x),
            items=int(p.metadata.get("items") or 0),
            features=int(p.metadata.get("features") or 0),
            bytes=int(p.metadata.get("bytes") or 0),
            proto_bytes=int(p.metadata.get("proto_bytes") or 0),
            time_us=p.y,
            source=str(s.metadata.get("source", "")),
        )
        for s in study.series
        for p in s.points
    ]
    meta = study.metadata
    handlers = []
    for h in meta.get("handlers") or []:
        language, codec = str(h.get("language", "")), str(h.get("codec", ""))
        estimate = study.estimates.get(f"{HANDLER}{language}/{codec}")
        if estimate is not None:
            handlers.append(HandlerCall(language=language, codec=codec,
                                        limit=int(h.get("limit") or 0),
                                        features=int(h.get("features") or 0),
                                        bytes=int(h.get("bytes") or 0), time_us=estimate,
                                        source=str(h.get("source", ""))))  # fmt: skip
    asked = meta.get("handler")
    return CodecResults(
        sizes=[int(x) for x in meta.get("sizes") or sorted({m.size for m in measurements})],
        cpus=[int(c) for c in meta.get("cpus") or []],
        measurements=measurements,
        handlers=handlers,
        handler=(int(asked["limit"]), int(asked["features"])) if asked else None,
        goal_calls_s=float(meta.get("goal_calls_s") or GOAL_CALLS_S),
        errors=list(study.errors),
        files={str(k): str(v) for k, v in (meta.get("files") or {}).items()},
    )


def problems(results: CodecResults, languages: Iterable[str]) -> list[str]:
    """What the measurements lack or disagree on: a size a language has no figure for, a size
    whose protobuf message differs in bytes between languages (the rule that shapes it is meant
    to give the same message), and a handler asked for but not measured, or at another request."""
    out: list[str] = []
    for language in languages:
        measured = {m.size for m in results.measurements if m.language == language}
        if missing := [s for s in results.sizes if s not in measured]:
            out.append(f"{language}: no figures for sizes {', '.join(map(str, missing))}")
    for size in results.sizes:
        protos = {m.language: m.proto_bytes for m in results.measurements
                  if m.size == size and m.codec == "protobuf"}  # fmt: skip
        if len(set(protos.values())) > 1:
            each = ", ".join(f"{lang} {b:,} B" for lang, b in sorted(protos.items()))
            out.append(f"size {size}: the protobuf messages differ between languages ({each})")
    if results.handler is not None:
        limit, features = results.handler
        for language in languages:
            found = {h.codec: h for h in results.handlers if h.language == language}
            if lacking := [c for c in ("protobuf", "json") if c not in found]:
                out.append(f"{language}: no handler figure for {', '.join(lacking)}")
            for h in found.values():
                if (h.limit, h.features) != results.handler:
                    out.append(
                        f"{language}: the {h.codec} handler answered {h.limit} items of "
                        f"{h.features} features, not the {limit} of {features} asked"
                    )
    return out
