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
from typing import Protocol

from bench.collectors import TreeSampler
from bench.launcher import LaunchSpec, RunningProcess, Supervisor
from bench.recording import DURATION_ENV, OUTPUT_ENV, WARMUP_ENV, Recording, window_path
from bench.results import LoadStats
from bench.stats import decode, percentiles

#: Locust's run-time clock starts before its test_start event; this slack lets it run past the
#: recorder's window, which is what decides what is measured.
RUN_TIME_SLACK_S = 2.0

#: At or above this share of one core, the generator may be what limits the measurement.
SATURATED_CPU_PERCENT = 90.0


class Window(Protocol):
    """What the caller measures beside the load, over the same window as the latencies."""

    def open(self) -> None: ...

    def close(self) -> None: ...


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
    run_time = max(1, round(spec.warmup_s + spec.duration_s + RUN_TIME_SLACK_S))
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
    spec: LocustSpec,
    supervisor: Supervisor,
    window: Window,
    on_progress: Callable[[float], None] | None = None,
) -> LoadStats:
    """Run the load and return what the recording hook measured after warm-up.

    `window.open()` is called when the recorder's measured window opens (the end of the warm-up)
    and `window.close()` when it ends, so the caller's measurements cover the same seconds.
    """
    record = spec.workdir / "locust-recording.json"
    record.unlink(missing_ok=True)
    window_path(record).unlink(missing_ok=True)
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
            env={
                OUTPUT_ENV: str(record),
                WARMUP_ENV: str(spec.warmup_s),
                DURATION_ENV: str(spec.duration_s),
            },
        )
    )
    try:
        generator_cpu = _follow(proc, spec, window, window_path(record), on_progress)
    finally:
        supervisor.stop(proc)
    if not record.exists():
        raise LoadError(
            f"locust wrote no recording (exit {proc.exit_code()}): {proc.stderr_tail()}"
        )
    recording: Recording = json.loads(record.read_text(encoding="utf-8"))
    hist = decode(recording["histogram"])
    duration = max(recording["window_end"] - recording["window_start"], 1e-9)
    return LoadStats(
        requests=recording["requests"],
        errors=recording["errors"],
        error_kinds=recording["error_kinds"],
        duration_s=round(duration, 3),
        throughput_rps=round(recording["requests"] / duration, 2),
        target_rps=spec.target_rps,
        latency_ms=percentiles(hist),
        histogram=recording["histogram"],
        generator_cpu_percent=generator_cpu,
        generator_saturated=generator_cpu >= SATURATED_CPU_PERCENT,
    )


def _window_start(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["window_start"])
    except (OSError, ValueError, KeyError):
        return None


def _follow(
    proc: RunningProcess,
    spec: LocustSpec,
    window: Window,
    announced: Path,
    on_progress: Callable[[float], None] | None,
) -> float:
    """Wait for Locust to finish; open and close the window; return the generator's CPU %."""
    started = time.monotonic()
    limit = spec.warmup_s + spec.duration_s + RUN_TIME_SLACK_S + 60.0
    opens_at: float | None = None
    sampler: TreeSampler | None = None
    cpu_percent = 0.0
    state = "waiting"  # → "open" → "closed"
    while proc.exit_code() is None:
        now = time.time()
        if opens_at is None:
            opens_at = _window_start(announced)
        elif state == "waiting" and now >= opens_at:
            sampler = TreeSampler(proc.pid)
            sampler.start()
            window.open()
            state = "open"
        elif state == "open" and now >= opens_at + spec.duration_s:
            window.close()
            assert sampler is not None
            cpu_percent = sampler.stop().cpu_percent
            state = "closed"
        if on_progress is not None and opens_at is not None:
            on_progress(
                max(0.0, min(now - opens_at + spec.warmup_s, spec.warmup_s + spec.duration_s))
            )
        if time.monotonic() - started > limit:
            raise LoadError(f"locust did not finish within {limit:.0f} s: {proc.stderr_tail()}")
        time.sleep(0.05)
    if state == "open":
        window.close()
        assert sampler is not None
        cpu_percent = sampler.stop().cpu_percent
    elif state == "waiting":
        raise LoadError(f"locust exited before the measured window: {proc.stderr_tail()}")
    return cpu_percent
