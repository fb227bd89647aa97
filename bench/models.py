"""The result file: one versioned pydantic model per run, written atomically, loaded back.

A run measures each implementation at one or more load points (target rates of a sweep, or the
single load of a closed-loop run); each point has repeated trials, interleaved across
implementations, and a summary of medians with confidence intervals. Every trial says whether
it is valid: a trial where the load generator, not the system, was the limit is kept (so the
report can show it) but is never summarised as the system's figure.

Schema history (bump SCHEMA_VERSION when a reader of an older file would misread a newer one):

- 1: first version — scenario, environment, per-implementation load, process and server metrics.
- 2: load points, each with trials; open-loop load with corrected and uncorrected latency,
  schedule slip, target vs achieved rate, validity; medians with confidence intervals;
  server-side latency; SLO search results.
- 3: an optional in-process study (`inprocess`): pools measured without a network by pyperf and
  `go test -bench`, throughput per worker count and task size. Version 2 files still load.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION: Final = 3

ParamValue = int | float | str | bool
Engine = Literal["locust", "loadgen"]
LoadModel = Literal["closed-loop", "open-loop"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CpuSets(_Model):
    """Which CPUs each role ran on; the system and the load generator never share one."""

    system: list[int]
    loadgen: list[int]
    support: list[int]
    shared: bool = Field(description="true when there were too few CPUs to keep roles apart")


class Environment(_Model):
    git_sha: str | None
    git_dirty: bool
    hostname: str
    platform: str
    cpu_model: str
    cpu_count: int
    cpusets: CpuSets
    python: str
    go: str | None
    libraries: dict[str, str]


class Scenario(_Model):
    """Everything that defines the load, so that a result can be reproduced from itself."""

    pattern: str
    profile: str
    engine: Engine
    load_model: LoadModel
    arrival: Literal["constant", "poisson"] | None = Field(description="open-loop arrivals")
    rates: list[float] = Field(description="target rates (req/s) of the points; [] closed-loop")
    trials: int = Field(ge=1)
    slo: str | None = Field(description="the SLO points are judged against, when one was given")
    locustfile: str
    params: dict[str, ParamValue]


class Percentiles(_Model):
    """Latency in milliseconds."""

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


class LoadStats(_Model):
    """What the load generator measured in one trial's window (warm-up excluded)."""

    engine: Engine
    load_model: LoadModel
    target_rps: float | None = Field(description="offered load: the open-loop rate or paced users")
    achieved_rps: float = Field(description="requests sent per second in the window")
    requests: int = Field(description="requests in the window, errors included")
    errors: int
    error_kinds: dict[str, int]
    duration_s: float
    throughput_rps: float = Field(description="successful responses per second")
    latency_ms: Percentiles = Field(
        description="open-loop: from each request's intended send time (coordinated omission "
        "corrected); closed-loop: from its actual send time"
    )
    uncorrected_ms: Percentiles | None = Field(description="open-loop: from the actual send time")
    slip_ms: Percentiles | None = Field(description="open-loop: how late requests left")
    histogram: str = Field(description="HdrHistogram of latency_ms, microseconds, base64")
    uncorrected_histogram: str | None
    generator_cpu_percent: float = Field(description="load generator CPU, % of one core")
    generator_cpus: int
    in_flight_cap_hit: bool = Field(
        default=False, description="open-loop: the generator's concurrency cap was reached"
    )


class ProcessStats(_Model):
    cpu_seconds: float
    cpu_percent: float = Field(description="% of one core, averaged over the measured window")
    peak_rss_bytes: int = Field(description="peak of the summed RSS of the process tree")


class Trial(_Model):
    index: int
    load: LoadStats
    process: ProcessStats
    server_metrics: dict[str, float]
    server_metrics_error: str | None = Field(
        default=None, description="why there are no server-side metrics (an overloaded system)"
    )
    server_latency_ms: dict[str, float] = Field(
        description="p50_low/p50_high, p99_low/p99_high: the bucket bounds (ms) of the system's "
        "own latency histogram that each quantile lies in"
    )
    valid: bool
    invalid_reasons: list[str]


class Estimate(_Model):
    """A median over trials with its confidence interval (bootstrap)."""

    median: float
    low: float
    high: float
    n: int


class LoadPoint(_Model):
    target_rps: float | None
    trials: list[Trial]
    summary: dict[str, Estimate] = Field(
        description="over valid trials: throughput_rps, achieved_rps, p50, p90, p99, p999, "
        "max (corrected), u_p50, u_p99 (uncorrected), error_rate"
    )
    valid: bool = Field(description="at least one valid trial, and most trials valid")


class SloSearch(_Model):
    """The highest rate found to meet the SLO, and why the search stopped."""

    slo: str
    best_rate: float | None
    first_failing_rate: float | None
    limited_by_generator: bool
    reason: str


ImplStatus = Literal["ok", "verify_failed", "failed"]


class ImplementationResult(_Model):
    name: str
    language: str
    status: ImplStatus
    error: str | None = None
    stderr_tail: str | None = None
    verify_problems: list[str] = []
    points: list[LoadPoint] = []
    knee_rps: float | None = Field(
        default=None, description="highest swept rate meeting the SLO with every lower rate"
    )
    search: SloSearch | None = None


class InProcessMeasurement(_Model):
    """One pool configuration timed in process: batches of identical-cost tasks."""

    implementation: str = Field(description="python-sync, python-threads, python-processes, go…")
    source: Literal["pyperf", "go-bench"]
    kernel: Literal["spin", "hash"]
    rounds: int = Field(ge=0)
    size: int = Field(ge=0, description="hash block in bytes; 0 for spin")
    workers: int = Field(ge=1)
    tasks: int = Field(ge=1, description="tasks per batch")
    task_ms: float = Field(description="the task cost aimed at, calibrated on one worker")
    batch_seconds: list[float] = Field(min_length=1, description="every timed batch")
    throughput: Estimate = Field(description="tasks/s: median over batches, bootstrap CI")


class FreeThreaded(_Model):
    """Whether a free-threaded CPython (no GIL) was found to run the thread pool on."""

    available: bool
    interpreter: str | None = None
    version: str | None = None
    note: str = Field(description="where it was looked for, or why it was not used")


class InProcessStudy(_Model):
    """Pools without a network: scaling with workers and the overhead crossover by task size."""

    cpus: list[int] = Field(description="the CPUs the benchmarks were pinned to")
    ns_per_round: dict[str, float] = Field(
        description="calibration: `language/kernel[/size]` → nanoseconds per kernel round"
    )
    scaling_task_ms: float
    task_ms: list[float] = Field(description="the task sizes of the crossover sweep")
    free_threaded: FreeThreaded
    measurements: list[InProcessMeasurement]
    errors: list[str] = Field(default=[], description="configurations that could not be run")


class RunResult(_Model):
    schema_version: Literal[2, 3] = SCHEMA_VERSION
    run_id: str
    created_at: datetime
    scenario: Scenario
    environment: Environment
    implementations: list[ImplementationResult]
    inprocess: InProcessStudy | None = None

    def implementation(self, name: str) -> ImplementationResult:
        for impl in self.implementations:
            if impl.name == name:
                return impl
        raise KeyError(name)


def first_error(err: ValidationError) -> str:
    """The first problem pydantic found, as one line: `field.path: message`."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"
