"""The pool study's results, and how they are laid out in the generic `Study` of the result file.

A pool study is stored as a `Study` of kind "pools":

- one **series** per implementation, kernel variant and asked task size, labelled
  `spin, 10 ms` or `hash 1 MiB, 10 ms`: throughput (tasks/s, the median over every timed batch
  with its bootstrap interval) against workers. Its metadata: `kernel`, `size` (bytes, 0 for
  spin), `task_ms` (asked), `rounds`, `tasks` (per batch), `source` (pyperf or go-bench); each
  point's: `batch_seconds` (every timed batch) and `measured_task_ms` (the kernel's time where
  the tasks ran; None in results upgraded from schema 3);
- **estimates** `calibration <group>/<kernel>[/<size>]`: nanoseconds per kernel round, the
  median of the calibration's probes with its interval;
- **metadata**: `ns_per_round` (per calibration key, the figure the tasks were sized with: the
  lowest probe), `cpus`, `scaling_ms`, `task_ms`, `tolerance`, `implementations` (name, pool,
  language, baseline, free_threaded of each one run), `free_threaded` (whether a free-threaded
  CPython was found, where, or why not), and `service_task` ({kernel, rounds}) when the table
  names the service's own task.

bench/store.py's upgrade writes schema 3's in-process study in this same layout.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from bench.models import Axis, Estimate, Series, SeriesPoint, Study
from bench.studies.base import add_point
from bench.studies.pools_plan import Variant

KIND = "pools"
WORKERS = Axis(name="workers", unit="workers")
THROUGHPUT = Axis(name="throughput", unit="tasks/s")
CALIBRATION = "calibration "


@dataclass(frozen=True, kw_only=True)
class FreeThreaded:
    """Whether a free-threaded CPython (no GIL) was found to run the thread pool on."""

    available: bool
    interpreter: str | None = None
    version: str | None = None
    note: str = ""
    asked: bool = True
    """Whether the table has an implementation to run on one."""


class Role(BaseModel):
    """What the report may say of an implementation (see pools_plan.PoolImplementation)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    pool: str
    language: str
    baseline: str | None = None
    free_threaded: bool = False


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One configuration timed: batches of identical-cost tasks."""

    implementation: str
    source: str
    kernel: str
    size: int
    rounds: int
    tasks: int
    task_ms: float
    workers: int
    batch_seconds: list[float]
    throughput: Estimate
    measured_task_ms: float | None = None

    @property
    def variant(self) -> Variant:
        return Variant(self.kernel, self.size)


@dataclass(frozen=True, kw_only=True)
class PoolResults:
    cpus: list[int]
    scaling_ms: float
    task_ms: list[float]
    roles: list[Role]
    free_threaded: FreeThreaded
    measurements: list[Measurement]
    ns_per_round: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Estimate] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    tolerance: float = 0.10
    service_task: dict[str, Any] | None = None

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)


def to_study(name: str, spec: dict[str, Any], results: PoolResults) -> Study:
    series: dict[tuple[str, str, int, float], Series] = {}
    for m in results.measurements:
        key = (m.implementation, m.kernel, m.size, m.task_ms)
        point = SeriesPoint(
            x=m.workers,
            y=m.throughput,
            metadata={"batch_seconds": m.batch_seconds, "measured_task_ms": m.measured_task_ms},
        )
        first = functools.partial(
            Series,
            label=f"{m.variant.label}, {m.task_ms:g} ms",
            implementation=m.implementation,
            x=WORKERS,
            y=THROUGHPUT,
            points=[],
            metadata={"kernel": m.kernel, "size": m.size, "task_ms": m.task_ms,
                      "rounds": m.rounds, "tasks": m.tasks, "source": m.source},
        )  # fmt: skip
        add_point(series, key, point, first)
    metadata: dict[str, Any] = {
        "ns_per_round": results.ns_per_round,
        "cpus": results.cpus,
        "scaling_ms": results.scaling_ms,
        "task_ms": results.task_ms,
        "tolerance": results.tolerance,
        "implementations": [r.model_dump() for r in results.roles],
        "free_threaded": asdict(results.free_threaded),
    }
    if results.service_task is not None:
        metadata["service_task"] = results.service_task
    return Study(
        kind=KIND,
        name=name,
        spec=spec,
        series=list(series.values()),
        estimates={f"{CALIBRATION}{k}": e for k, e in results.calibration.items()},
        errors=results.errors,
        metadata=metadata,
    )


def from_study(study: Study) -> PoolResults:
    """The pool results of a stored study (of this run, or upgraded from schema 3)."""
    meta = study.metadata
    measurements = [
        Measurement(
            implementation=s.implementation,
            source=str(s.metadata.get("source", "")),
            kernel=str(s.metadata["kernel"]),
            size=int(s.metadata.get("size") or 0),
            rounds=int(s.metadata.get("rounds") or 0),
            tasks=int(s.metadata.get("tasks") or 0),
            task_ms=float(s.metadata["task_ms"]),
            workers=round(p.x),
            batch_seconds=[float(v) for v in p.metadata.get("batch_seconds") or []],
            throughput=p.y,
            measured_task_ms=_float(p.metadata.get("measured_task_ms")),
        )
        for s in study.series
        for p in s.points
    ]
    ft = meta.get("free_threaded") or {}
    return PoolResults(
        cpus=list(meta.get("cpus") or []),
        scaling_ms=float(meta["scaling_ms"]),
        task_ms=[float(x) for x in meta.get("task_ms") or []],
        roles=[Role.model_validate(r) for r in meta.get("implementations") or []],
        free_threaded=FreeThreaded(
            available=bool(ft.get("available")),
            interpreter=ft.get("interpreter"),
            version=ft.get("version"),
            note=str(ft.get("note", "")),
            asked=bool(ft.get("asked", True)),
        ),
        measurements=measurements,
        ns_per_round={str(k): float(v) for k, v in (meta.get("ns_per_round") or {}).items()},
        calibration={
            k.removeprefix(CALIBRATION): e
            for k, e in study.estimates.items()
            if k.startswith(CALIBRATION)
        },
        errors=list(study.errors),
        tolerance=float(meta.get("tolerance", 0.10)),
        service_task=meta.get("service_task"),
    )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def roles_in_order(results: PoolResults, names: Sequence[str]) -> list[str]:
    """Names in the order of the table's implementations; any other after them, sorted."""
    order = [r.name for r in results.roles]
    return [n for n in order if n in names] + sorted(set(names) - set(order))
