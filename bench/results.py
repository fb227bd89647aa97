"""The result file: one versioned pydantic model per run, written atomically, loaded back.

Schema history (bump SCHEMA_VERSION when a reader of an older file would misread a newer one):

- 1: first version — scenario, environment, per-implementation load, process and server metrics.
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

SCHEMA_VERSION: Final = 1

ParamValue = int | float | str | bool


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
    engine: Literal["locust"]
    load_model: Literal["closed-loop"]
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
    requests: int = Field(description="responses recorded after warm-up, errors included")
    errors: int
    error_kinds: dict[str, int]
    duration_s: float = Field(description="measured window, warm-up excluded")
    throughput_rps: float
    target_rps: float | None = Field(description="offered load when the scenario paces users")
    latency_ms: Percentiles
    histogram: str = Field(description="HdrHistogram, microseconds, compressed base64")
    generator_cpu_percent: float = Field(description="load generator CPU, % of one core")
    generator_saturated: bool = Field(
        description="the load generator used ≥ 90% of a core: the limit may be the generator"
    )


class ProcessStats(_Model):
    cpu_seconds: float
    cpu_percent: float = Field(description="% of one core, averaged over the measured window")
    peak_rss_bytes: int = Field(description="peak of the summed RSS of the process tree")


ImplStatus = Literal["ok", "verify_failed", "failed"]


class ImplementationResult(_Model):
    name: str
    language: str
    status: ImplStatus
    error: str | None = None
    stderr_tail: str | None = None
    verify_problems: list[str] = []
    load: LoadStats | None = None
    process: ProcessStats | None = None
    server_metrics: dict[str, float] = {}


class RunResult(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    created_at: datetime
    scenario: Scenario
    environment: Environment
    implementations: list[ImplementationResult]

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
    if version != SCHEMA_VERSION:
        raise ResultFileError(
            f"{path}: schema_version: {version!r} is not supported (this patternbench reads "
            f"{SCHEMA_VERSION})"
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
    """One row per (run, implementation) over every stored run, for pandas analysis."""
    import pandas as pd

    rows: list[dict[str, object]] = []
    for path in sorted(runs_dir.glob("*/run.json")):
        run = load_run(path)
        for impl in run.implementations:
            row: dict[str, object] = {
                "run_id": run.run_id,
                "created_at": run.created_at,
                "pattern": run.scenario.pattern,
                "profile": run.scenario.profile,
                "git_sha": run.environment.git_sha,
                "implementation": impl.name,
                "language": impl.language,
                "status": impl.status,
            }
            if impl.load is not None:
                row.update(
                    requests=impl.load.requests,
                    errors=impl.load.errors,
                    throughput_rps=impl.load.throughput_rps,
                    generator_saturated=impl.load.generator_saturated,
                    **{f"{k}_ms": v for k, v in impl.load.latency_ms.model_dump().items()},
                )
            if impl.process is not None:
                row.update(
                    cpu_percent=impl.process.cpu_percent,
                    peak_rss_bytes=impl.process.peak_rss_bytes,
                )
            rows.append(row)
    return pd.DataFrame(rows)
