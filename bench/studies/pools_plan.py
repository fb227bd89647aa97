"""The pool study's table and plan: which implementation runs which task on how many workers.

The table (`[studies.<name>]` with `kind = "pools"` in a system.toml) names everything that is
the pattern's: the pyperf script and the Go benchmark, the arguments they are given, and the
implementations with what the report may say of each (`pool`: inline, threads, processes or
goroutines; `baseline`: the implementation whose one-worker rate is its "inline" rate). The
study passes the arguments on without reading them, as pyperformance passes `extra_opts`.

Task sizes are times, not round counts: each kernel is calibrated where the tasks run (see
bench/studies/pools.py), so "a 10 ms task" is 10 ms of one worker's time in every implementation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PyperfScript(_Table):
    """A pyperf script run as `python SCRIPT *args *implementation.args --workers … --name …`."""

    script: str = Field(description="relative to the repository root")
    args: list[str] = Field(default=[], description="given to every run, unread")


class GoBenchmark(_Table):
    """`go test -bench ^BENCHMARK$ PACKAGE -args *args`, run in `dir`."""

    dir: str = "go"
    package: str = Field(description="e.g. ./internal/x")
    benchmark: str = Field(description="e.g. BenchmarkPool")
    args: list[str] = Field(
        description="the benchmark's flags; `{cases}` becomes kernel:rounds:size:tasks,… and "
        "`{workers}` the worker counts 1,2,… (write them `{{cases}}` in the system.toml)"
    )


class PoolImplementation(_Table):
    name: str = Field(description="shown in the report, and the name of its pyperf suite file")
    runner: Literal["pyperf", "go"]
    pool: Literal["inline", "threads", "processes", "goroutines"] = Field(
        description="what the report may say of it; an inline one runs on one worker only"
    )
    language: str = Field(description="implementations of one language share a calibration")
    args: list[str] = Field(default=[], description="pyperf: given to the script, unread")
    baseline: str | None = Field(
        default=None,
        description="the implementation whose one-worker rate is this one's inline rate; "
        "none: its own at one worker",
    )
    free_threaded: bool = Field(
        default=False, description="run on a free-threaded CPython, and only when one is found"
    )


class PoolSpec(_Table):
    """The `[studies.<name>]` table of kind "pools", rendered with the run's parameters."""

    scaling_ms: float = Field(gt=0, description="task size of the throughput-vs-workers figures")
    task_ms: list[float] = Field(min_length=1, description="task sizes of the crossover (spin)")
    hash_sizes: list[int] = Field(default=[], description="hash blocks, bytes")
    batch_s: float = Field(gt=0, description="one batch is about this much of one worker's time")
    pyperf_processes: int = Field(ge=1, description="pyperf worker processes per configuration")
    pyperf_values: int = Field(ge=1, description="timed batches per pyperf process")
    go_count: int = Field(ge=1, description="go test -bench -count")
    tolerance: float = Field(
        default=0.10, gt=0, description="how far a measured task may be from the asked size"
    )
    service_kernel: str | None = Field(
        default=None, description="the kernel of the service's own task, for the reading"
    )
    service_rounds: int | None = Field(default=None, description="… and its rounds")
    pyperf: PyperfScript | None = None
    go: GoBenchmark | None = None
    implementations: list[PoolImplementation] = Field(min_length=1)

    @field_validator("task_ms", "hash_sizes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """`"0.1,1,10"` (a parameter) as a list; a list stays one."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [i.name for i in self.implementations]
        if len(set(names)) != len(names):
            raise ValueError(f"implementations: names repeat: {', '.join(names)}")
        for impl in self.implementations:
            if getattr(self, impl.runner) is None:
                raise ValueError(f"implementations: {impl.name} runs on {impl.runner}, which "
                                 f"has no [{impl.runner}] table")  # fmt: skip
            if impl.baseline is not None and impl.baseline not in names:
                raise ValueError(f"implementations: {impl.name}: no baseline {impl.baseline!r}")
            if impl.free_threaded and impl.runner != "pyperf":
                raise ValueError(f"implementations: {impl.name}: free_threaded needs pyperf")
        return self


class Variant(NamedTuple):
    """A kernel and its block size (0 for spin)."""

    kernel: str
    size: int

    @property
    def label(self) -> str:
        return "spin" if self.kernel == "spin" else f"hash {size_label(self.size)}"

    @property
    def slug(self) -> str:
        """For a benchmark's name: `spin`, `hash-1MiB`."""
        return "spin" if self.kernel == "spin" else f"hash-{size_label(self.size).replace(' ', '')}"


SPIN = Variant("spin", 0)


def size_label(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def variants(spec: PoolSpec) -> list[Variant]:
    return [SPIN, *(Variant("hash", size) for size in spec.hash_sizes)]


class Config(NamedTuple):
    """One configuration to time: an implementation, its pool size and its task."""

    implementation: str
    workers: int
    variant: Variant
    rounds: int
    tasks: int
    task_ms: float

    @property
    def name(self) -> str:
        """The benchmark's name in the implementation's pyperf suite: `spin-10ms-w2`."""
        return f"{self.variant.slug}-{self.task_ms:g}ms-w{self.workers}"


def calibration_group(impl: PoolImplementation) -> str:
    """Implementations that share a calibration: one language on one kind of interpreter."""
    return impl.language + ("-ft" if impl.free_threaded else "")


def calibration_key(group: str, variant: Variant) -> str:
    return f"{group}/{variant.kernel}" + (f"/{variant.size}" if variant.kernel == "hash" else "")


def rounds_for(task_ms: float, ns_per_round: float) -> int:
    return max(1, round(task_ms * 1e6 / ns_per_round))


def tasks_for(task_ms: float, batch_s: float, max_workers: int) -> int:
    """Tasks per batch: about batch_s of one worker's time, at least 4 per worker, and a
    multiple of max_workers so that no worker count leaves a worker idle at the end."""
    tasks = max(4 * max_workers, math.ceil(batch_s * 1000 / task_ms))
    return math.ceil(tasks / max_workers) * max_workers


def plan(
    spec: PoolSpec,
    impls: Sequence[PoolImplementation],
    workers: Sequence[int],
    ns_per_round: Mapping[str, float],
) -> list[Config]:
    """Every configuration of both figures, without duplicates, in a stable order.

    Scaling: every implementation at every worker count (an inline one at one), each kernel
    variant, at `scaling_ms`. Crossover: spin at every size of `task_ms`, on one and on the most
    workers; a thread pool on the most only (one thread is the inline case again).
    """
    most = max(workers)
    configs: dict[tuple[str, int, Variant, float], Config] = {}

    def counts(impl: PoolImplementation) -> list[int]:
        return [1] if impl.pool == "inline" else list(workers)

    def add(impl: PoolImplementation, w: int, variant: Variant, task_ms: float) -> None:
        ns = ns_per_round[calibration_key(calibration_group(impl), variant)]
        config = Config(impl.name, w, variant, rounds_for(task_ms, ns),
                        tasks_for(task_ms, spec.batch_s, most), task_ms)  # fmt: skip
        configs.setdefault((impl.name, w, variant, task_ms), config)

    for variant in variants(spec):
        for impl in impls:
            for w in counts(impl):
                add(impl, w, variant, spec.scaling_ms)
    for task_ms in spec.task_ms:
        for impl in impls:
            found = counts(impl)
            for w in [found[-1]] if impl.pool == "threads" else sorted({found[0], found[-1]}):
                add(impl, w, SPIN, task_ms)
    return list(configs.values())


def describe(config: Config) -> str:
    return (
        f"{config.implementation} x{config.workers}, {config.variant.label}, "
        f"{config.task_ms:g} ms ({config.rounds:,} rounds), {config.tasks} tasks"
    )
