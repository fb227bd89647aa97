"""The Locust load engine: a locustfile run headless as a subprocess on the load generator's CPUs.

Locust users are closed-loop (a user sends its next request after the previous answer), and are
labelled so in results. Latencies come from the recording hook (`bench.recording`), not from
Locust's rounded statistics; the generator's own CPU is measured from outside with psutil,
because Locust's CPU warning never fires in runs shorter than about 20 s.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.collectors import TreeSampler
from bench.launcher import LaunchSpec, RunningProcess, Supervisor
from bench.recording import OUTPUT_ENV, WARMUP_ENV, Recording
from bench.results import LoadStats
from bench.stats import decode, percentiles

#: At or above this share of one core, the generator may be what limits the measurement.
SATURATED_CPU_PERCENT = 90.0


class LoadError(Exception):
    """The load engine failed (as opposed to the system under test)."""


@dataclass(frozen=True, kw_only=True)
class LocustSpec:
    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    duration_s: float
    warmup_s: float
    scenario_args: Sequence[str]
    cpus: Sequence[int]
    workdir: Path
    target_rps: float | None = None


def command(spec: LocustSpec) -> list[str]:
    run_time = max(1, round(spec.warmup_s + spec.duration_s))
    return [
        sys.executable, "-m", "locust",
        "-f", str(spec.locustfile),
        "--headless", "--only-summary",
        "--users", str(spec.users),
        "--spawn-rate", str(spec.spawn_rate),
        "--run-time", f"{run_time}s",
        "--host", spec.host,
        "--loglevel", "WARNING",
        *spec.scenario_args,
    ]  # fmt: skip


def run(
    spec: LocustSpec, supervisor: Supervisor, on_progress: Callable[[float], None] | None = None
) -> LoadStats:
    """Run the load and return what the recording hook measured after warm-up."""
    record = spec.workdir / "locust-recording.json"
    record.unlink(missing_ok=True)
    proc = supervisor.start(
        LaunchSpec(
            name="locust",
            command=command(spec),
            cwd=spec.workdir,
            cpus=spec.cpus,
            ports=(),
            ready_url=None,
            ready_timeout_s=0,
            log_path=spec.workdir / "locust.log",
            env={OUTPUT_ENV: str(record), WARMUP_ENV: str(spec.warmup_s)},
        )
    )
    try:
        generator_cpu = _wait(proc, spec, on_progress)
    finally:
        supervisor.stop(proc)
    if not record.exists():
        raise LoadError(
            f"locust wrote no recording (exit {proc.exit_code()}): {proc.stderr_tail()}"
        )
    recording: Recording = json.loads(record.read_text(encoding="utf-8"))
    hist = decode(recording["histogram"])
    window = max(recording["window_end"] - recording["window_start"], 1e-9)
    return LoadStats(
        requests=recording["requests"],
        errors=recording["errors"],
        error_kinds=recording["error_kinds"],
        duration_s=round(window, 3),
        throughput_rps=round(recording["requests"] / window, 2),
        target_rps=spec.target_rps,
        latency_ms=percentiles(hist),
        histogram=recording["histogram"],
        generator_cpu_percent=generator_cpu,
        generator_saturated=generator_cpu >= SATURATED_CPU_PERCENT,
    )


def _wait(
    proc: RunningProcess, spec: LocustSpec, on_progress: Callable[[float], None] | None
) -> float:
    """Wait for Locust to finish, sampling its CPU over the measured window only."""
    started = time.monotonic()
    end_of_load = spec.warmup_s + spec.duration_s
    limit = end_of_load + 60.0
    sampler: TreeSampler | None = None
    sampled = False
    cpu_percent = 0.0
    while proc.exit_code() is None:
        elapsed = time.monotonic() - started
        if not sampled and sampler is None and elapsed >= spec.warmup_s:
            sampler = TreeSampler(proc.pid)
            sampler.start()
        if sampler is not None and elapsed >= end_of_load - 0.5:
            cpu_percent = sampler.stop().cpu_percent
            sampler, sampled = None, True
        if on_progress is not None:
            on_progress(min(elapsed, end_of_load))
        if elapsed > limit:
            raise LoadError(f"locust did not finish within {limit:.0f} s: {proc.stderr_tail()}")
        time.sleep(0.1)
    if sampler is not None:
        cpu_percent = sampler.stop().cpu_percent
    return cpu_percent
