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

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION: Final = 3
#: Versions this reader understands; a version-2 file is a version-3 file without `inprocess`.
READABLE_VERSIONS: Final = (2, 3)

ParamValue = int | float | str | bool
Engine = Literal["locust", "loadgen"]
LoadModel = Literal["closed-loop", "open-loop"]


class ResultFileError(Exception):
    """A result file that cannot be read: the message is one line naming the file and the field."""


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


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_run(result: RunResult, run_dir: Path) -> Path:
    path = run_dir / "run.json"
    write_atomic(path, result.model_dump_json(indent=2) + "\n")
    return path


def first_error(err: ValidationError) -> str:
    """The first problem pydantic found, as one line: `field.path: message`."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def load_run(path: Path) -> RunResult:
    """Read one run.json; any problem is a ResultFileError naming the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ResultFileError(f"{path}: cannot read: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultFileError(f"{path}: not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise ResultFileError(f"{path}: not a patternbench result (top level is not an object)")
    version = raw.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ResultFileError(
            f"{path}: schema_version: {version!r} is not supported (this patternbench reads "
            f"{readable})"
        )
    try:
        return RunResult.model_validate(raw)
    except ValidationError as e:
        raise ResultFileError(f"{path}: {first_error(e)}") from e


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run is named by its folder, its run.json, or its id under runs_dir."""
    candidate = Path(ref)
    for path in (candidate, candidate / "run.json", runs_dir / ref / "run.json"):
        if path.is_file():
            return path
    raise ResultFileError(f"{ref}: no such run (looked for it as a path and under {runs_dir})")


def runs_dataframe(runs_dir: Path) -> pd.DataFrame:
    """One row per (run, implementation, load point) over every stored run, for pandas.

    Latency and throughput columns are the medians over the point's valid trials.
    """
    import pandas as pd

    rows: list[dict[str, object]] = []
    for path in sorted(runs_dir.glob("*/run.json")):
        run = load_run(path)
        for impl in run.implementations:
            base: dict[str, object] = {
                "run_id": run.run_id,
                "created_at": run.created_at,
                "pattern": run.scenario.pattern,
                "profile": run.scenario.profile,
                "engine": run.scenario.engine,
                "load_model": run.scenario.load_model,
                "git_sha": run.environment.git_sha,
                "implementation": impl.name,
                "language": impl.language,
                "status": impl.status,
            }
            if not impl.points:
                rows.append(base)
            for point in impl.points:
                row = {**base, "target_rps": point.target_rps, "valid": point.valid}
                row["trials"] = len(point.trials)
                for key, estimate in point.summary.items():
                    suffix = "" if key.endswith(("_rps", "_rate")) else "_ms"
                    row[f"{key}{suffix}"] = estimate.median
                rows.append(row)
    return pd.DataFrame(rows)
