"""The codec study's table, its measurements read from both tools, and their layout in `Study`.

The table (`[studies.<name>]` with `kind = "codec"`) names the pattern's pytest-benchmark suite
and Go benchmark and the arguments they are given: `{sizes}` in them becomes the sizes, comma-
separated (write it `{{sizes}}` in the system.toml); nothing else is read.

Both tools name every benchmark by size (bytes of protobuf the message is built to), codec and
op, and report the bytes its codec writes or reads per message: pytest-benchmark in each
benchmark's `extra_info` (`size`, `items`, `features`, `codec`, `op`, `bytes`, `proto_bytes`),
`go test -bench` in its sub-benchmark name (`size=S/items=I/features=F/codec=C/op=O`) and a
`B/msg` metric.

A codec study is stored as a `Study` of kind "codec":

- one **series** per language, codec and op (`python protobuf encode`): time per message (µs,
  the median over pytest-benchmark's rounds or go's `-count` samples, with its bootstrap
  interval) against the size asked, in bytes. Series metadata: `language`, `codec`, `op`,
  `source` (pytest-benchmark or go-bench); each point's: `bytes` (what this codec writes or
  reads per message), `proto_bytes` (the message's protobuf size), `items`, `features`,
  `ns_per_byte` and `mb_per_s` (over `bytes`);
- **metadata**: `sizes`, `cpus`, `files` (the tools' own output kept in the study's folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.models import Axis, Estimate, Series, SeriesPoint, Study
from bench.stats.confidence import median_ci
from bench.studies.pools_go import GoBenchLine

KIND = "codec"
SIZE = Axis(name="message size", unit="bytes")
TIME = Axis(name="time per message", unit="µs")
_BENCHTIME = re.compile(r"^(\d+x|\d+(\.\d+)?(ns|us|µs|ms|s|m))$")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PytestSuite(_Table):
    """`python -m pytest SCRIPT *args` with pytest-benchmark's options, run from the root."""

    script: str = Field(description="relative to the repository root")
    args: list[str] = Field(default=[], description="given unread; `{sizes}` filled in")


class GoCodecBenchmark(_Table):
    """`go test -bench ^BENCHMARK$ PACKAGE -args *args`, run in `dir`."""

    dir: str = "go"
    package: str = Field(description="the Go package of the benchmark, e.g. ./internal/x/codec")
    benchmark: str = Field(description="e.g. BenchmarkCodec")
    args: list[str] = Field(default=[], description="given unread; `{sizes}` filled in")


class CodecSpec(_Table):
    """The `[studies.<name>]` table of kind "codec", rendered with the run's parameters."""

    sizes: list[int] = Field(min_length=1, description="protobuf sizes of the messages, bytes")
    min_rounds: int = Field(default=5, ge=1, description="pytest-benchmark's rounds at least")
    max_time_s: float = Field(default=0.5, gt=0, description="pytest-benchmark's time per test")
    min_time_s: float = Field(
        default=0.0005, gt=0, description="a round is at least this long (calls batched)"
    )
    go_count: int = Field(default=5, ge=1, description="go test -bench -count")
    go_benchtime: str = Field(default="0.2s", description="go test -benchtime, e.g. 0.2s or 100x")
    pytest: PytestSuite
    go: GoCodecBenchmark | None = None

    @field_validator("sizes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """`"100,1024"` (a parameter) or one number as a list; a list stays one."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("sizes")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value) or len(set(value)) != len(value):
            raise ValueError(f"sizes must be distinct byte counts of 1 or more: {value}")
        return sorted(value)

    @field_validator("go_benchtime")
    @classmethod
    def _benchtime(cls, value: str) -> str:
        if not _BENCHTIME.match(value):
            raise ValueError(f"{value!r} is not a go -benchtime (0.2s, 500ms, 100x)")
        return value


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
class CodecResults:
    sizes: list[int]
    cpus: list[int]
    measurements: list[Measurement]
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


def read_pytest_json(path: Path) -> list[Measurement]:
    """Every benchmark of a pytest-benchmark JSON file (`--benchmark-json`): the per-call time
    of each round (`stats.data`), or its median alone in a file saved without the data."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = doc["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CodecDataError(f"{path.name}: not pytest-benchmark JSON: {e}") from None
    found: list[Measurement] = []
    for bench in benchmarks:
        where = f"{path.name}: {bench.get('name', '?')}"
        extra, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
        data = stats.get("data") or ([stats["median"]] if "median" in stats else [])
        if not data or not all(isinstance(v, int | float) and v > 0 for v in data):
            raise CodecDataError(f"{where}: no timings")
        codec, op = extra.get("codec"), extra.get("op")
        if not isinstance(codec, str) or not isinstance(op, str):
            raise CodecDataError(f"{where}: extra_info has no codec and op")
        found.append(
            Measurement(
                language=str(extra.get("language", "python")),
                codec=codec,
                op=op,
                size=_int(extra, "size", where),
                items=_int(extra, "items", where),
                features=_int(extra, "features", where),
                bytes=_int(extra, "bytes", where),
                proto_bytes=_int(extra, "proto_bytes", where),
                time_us=estimate_us([float(v) for v in data]),
                source="pytest-benchmark",
            )
        )
    return found


def go_measurements(lines: Iterable[GoBenchLine]) -> list[Measurement]:
    """One measurement per sub-benchmark, its `-count` samples (ns/op) pooled."""
    samples: dict[tuple[str, str, int, int, int], list[float]] = {}
    sizes: dict[tuple[str, str, int, int, int], int] = {}
    for line in lines:
        f = line.fields
        where = f"{line.name}/{'/'.join(f'{k}={v}' for k, v in f.items())}"
        if "B/msg" not in line.metrics:
            raise CodecDataError(f"{where}: no B/msg")
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
        key = (m.language, m.codec, m.op)
        if key in series:
            s = series[key]
            series[key] = s.model_copy(update={"points": [*s.points, point]})
            continue
        series[key] = Series(
            label=f"{m.language} {m.codec} {m.op}",
            implementation=m.language,
            x=SIZE,
            y=TIME,
            points=[point],
            metadata={"language": m.language, "codec": m.codec, "op": m.op, "source": m.source},
        )
    return Study(
        kind=KIND,
        name=name,
        spec=spec,
        series=list(series.values()),
        errors=results.errors,
        metadata={"sizes": results.sizes, "cpus": results.cpus, "files": results.files},
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
    return CodecResults(
        sizes=[int(x) for x in meta.get("sizes") or sorted({m.size for m in measurements})],
        cpus=[int(c) for c in meta.get("cpus") or []],
        measurements=measurements,
        errors=list(study.errors),
        files={str(k): str(v) for k, v in (meta.get("files") or {}).items()},
    )


def problems(results: CodecResults, languages: Iterable[str]) -> list[str]:
    """What the measurements lack or disagree on: a size a language has no figure for, and a
    size whose protobuf message differs in bytes between languages (the rule that shapes it is
    meant to give the same message)."""
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
    return out
