"""The ceiling study's measurements: the script's output read, their layout in `Study`, and the
ceiling at any batch size.

The script (the table's `script`) prints one JSON object: the device it ran on, torch's and
CUDA's versions, the CPU threads of the forward pass, the model, and per batch size the samples/s
of every timed block and the median time of one batch (`Output` below).

A ceiling study is stored as a `Study` of kind "ceiling":

- one **series**, "raw ceiling": samples/s (the median over the blocks, with its bootstrap
  interval) against the batch size; each point's metadata: `s_per_batch` (the median time of
  one batch) and `blocks`;
- **metadata**: `device`, `torch`, `cuda`, `threads`, `model`, `seq_len` and `flops_per_sample`
  as the script said them, `cpus` (where it ran) and `file` (its output, kept in the study's
  folder).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from bench.models import Axis, Estimate, Series, SeriesPoint, Study, first_error
from bench.stats.summary import estimate

KIND = "ceiling"
SERIES = "raw ceiling"
BATCH = Axis(name="batch size", unit="samples per forward pass")
RATE = Axis(name="throughput", unit="samples/s")
#: What the script's facts are kept as, in the study's metadata.
FACTS = ("device", "torch", "cuda", "threads", "model", "seq_len", "flops_per_sample")


class CeilingDataError(Exception):
    """Script output that cannot be read as a ceiling; one line."""


class OutputPoint(BaseModel):
    """One batch size as the script timed it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    batch: int = Field(ge=1)
    samples_per_s: list[PositiveFloat] = Field(min_length=1, description="one per timed block")
    median_s_per_batch: PositiveFloat


class Output(BaseModel):
    """The script's JSON object."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    device: str
    torch: str
    cuda: str | None = None
    threads: int = Field(ge=1)
    model: str
    seq_len: int | None = None
    flops_per_sample: float | None = None
    points: list[OutputPoint] = Field(min_length=1)


def read_output(text: str) -> Output:
    """The last line of `text` that is a JSON object (a library may print before it)."""
    lines = [line for line in text.splitlines() if line.lstrip().startswith("{")]
    if not lines:
        raise CeilingDataError("the script printed no JSON object")
    try:
        return Output.model_validate(json.loads(lines[-1]))
    except ValueError as e:
        where = first_error(e) if isinstance(e, ValidationError) else str(e)
        raise CeilingDataError(f"the script's JSON is not a ceiling: {where}") from None


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """y at `x` on the curve through `points` (x ascending, x > 0), linear in log x between the
    two points around it and clamped to the first and last; nan without points."""
    if not points or x <= 0 or not math.isfinite(x):
        return float("nan")
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return points[0][1]
    if x >= xs[-1]:
        return points[-1][1]
    i = bisect.bisect_right(xs, x)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    share = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return y0 + share * (y1 - y0)


@dataclass(frozen=True, kw_only=True)
class CeilingPoint:
    batch: int
    rate: Estimate
    """Samples/s, the median over the blocks with its interval."""
    s_per_batch: float


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    """The raw ceiling as stored: its points (ascending batch) and the script's facts."""

    points: list[CeilingPoint]
    facts: dict[str, Any] = field(default_factory=dict)
    cpus: list[int] = field(default_factory=list)
    file: str | None = None
    errors: list[str] = field(default_factory=list)

    def at(self, batch: float) -> float:
        """Samples/s at a (mean) batch size: log-linear between the sizes measured, clamped."""
        return interpolate([(p.batch, p.rate.median) for p in self.points], batch)

    @property
    def smallest(self) -> CeilingPoint | None:
        return self.points[0] if self.points else None

    @property
    def largest(self) -> CeilingPoint | None:
        return self.points[-1] if self.points else None


def to_ceiling(output: Output, cpus: list[int], file: str | None) -> Ceiling:
    points = [
        CeilingPoint(
            batch=p.batch, rate=estimate(p.samples_per_s), s_per_batch=p.median_s_per_batch
        )
        for p in sorted(output.points, key=lambda p: p.batch)
    ]
    facts = {k: v for k, v in output.model_dump().items() if k in FACTS}
    return Ceiling(points=points, facts=facts, cpus=cpus, file=file)


def to_study(name: str, spec: dict[str, Any], ceiling: Ceiling) -> Study:
    series = []
    if ceiling.points:
        points = [
            SeriesPoint(
                x=p.batch, y=p.rate, metadata={"s_per_batch": p.s_per_batch, "blocks": p.rate.n}
            )
            for p in ceiling.points
        ]
        series = [Series(label=SERIES, implementation="", x=BATCH, y=RATE, points=points,
                         metadata={"device": ceiling.facts.get("device")})]  # fmt: skip
    meta: dict[str, Any] = {**ceiling.facts, "cpus": ceiling.cpus}
    if ceiling.file is not None:
        meta["file"] = ceiling.file
    return Study(kind=KIND, name=name, spec=spec, series=series, errors=ceiling.errors,
                 metadata=meta)  # fmt: skip


def from_study(study: Study) -> Ceiling:
    found = next((s for s in study.series if s.label == SERIES), None)
    points = [
        CeilingPoint(batch=round(p.x), rate=p.y,
                     s_per_batch=float(p.metadata.get("s_per_batch") or 0.0))
        for p in (found.points if found is not None else [])
    ]  # fmt: skip
    meta = study.metadata
    file = meta.get("file")
    return Ceiling(
        points=sorted(points, key=lambda p: p.batch),
        facts={k: meta[k] for k in FACTS if k in meta},
        cpus=[int(c) for c in meta.get("cpus") or []],
        file=str(file) if file is not None else None,
        errors=list(study.errors),
    )


def missing(ceiling: Ceiling, asked: Sequence[int]) -> list[str]:
    """The batch sizes asked for that the script did not time."""
    measured = {p.batch for p in ceiling.points}
    lacking = [b for b in asked if b not in measured]
    return [f"no figure for batch sizes {', '.join(map(str, lacking))}"] if lacking else []
