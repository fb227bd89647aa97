"""What every load engine shares: the protocol, the spec of one measurement, the measured
window, following the generator process, and turning its histograms into `LoadStats`.

An engine (`bench.engines.loadgen`, `bench.engines.locust`) reads *what* to send from its own
table in the pattern's system.toml (`[scenario.loadgen]`, `[scenario.locust]`: its
`table_model`), and *how much, how long, where* from a `LoadSpec` the runner builds the same way
for every engine. It starts its generator under the Supervisor on the load generator's CPUs and
returns `LoadStats`; whether the generator was the limit is decided afterwards, in one place
(`bench.stats.headroom`). The runner never branches on an engine's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from bench.collect.process import TreeSampler
from bench.launch.supervisor import LaunchSpec, RunningProcess, Supervisor
from bench.models import LoadModel, LoadStats
from bench.stats.percentiles import decode, percentiles


class LoadError(Exception):
    """The load engine failed (as opposed to the system under test)."""


class Window(Protocol):
    """What the caller measures beside the load, over the same window as the latencies."""

    def open(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """One measurement: where, how long, which load, on which CPUs."""

    host: str
    port: int
    load_model: LoadModel
    duration_s: float
    warmup_s: float
    cpus: Sequence[int]
    workdir: Path
    rate: float | None = None
    arrival: str = "constant"
    seed: int = 1
    max_in_flight: int = 1000
    users: int = 1
    spawn_rate: float = 1.0
    paced_rps: float | None = None
    #: The pattern's repository (a worktree in the gate): what its tables name is relative to it.
    root: Path = Path(".")
    #: Where the harness's own tools (go/bin/loadgen) are built: the checkout running the harness.
    tools_root: Path = Path(".")

    @property
    def target_rps(self) -> float | None:
        return self.rate if self.load_model == "open-loop" else self.paced_rps

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class LoadEngine(Protocol):
    """A load engine: what to send comes from its table, the rest from the LoadSpec."""

    #: The model of its `[scenario.<engine>]` table.
    table_model: type[BaseModel]
    #: Whether it can run closed-loop users (`load_model = "closed-loop"`).
    closed_loop: bool

    def build(self, tools_root: Path, log: Path) -> None:
        """Make the generator runnable (compile it); raise LoadError when that fails."""
        ...

    def run(
        self,
        table: BaseModel,
        spec: LoadSpec,
        supervisor: Supervisor,
        window: Window,
        on_progress: Callable[[float], None] | None = None,
    ) -> LoadStats:
        """Run one measurement; `window` opens and closes with the measured window."""
        ...


def start_generator(
    supervisor: Supervisor,
    spec: LoadSpec,
    name: str,
    command: list[str],
    env: dict[str, str] | None = None,
) -> RunningProcess:
    """Start a load generator on the generator's CPUs, its output logged in the trial's folder."""
    spec.workdir.mkdir(parents=True, exist_ok=True)
    return supervisor.start(
        LaunchSpec(
            name=name,
            command=command,
            cwd=spec.workdir,
            cpus=spec.cpus,
            ports=(),
            ready=None,
            ready_timeout_s=0,
            log_path=spec.workdir / f"{name}.log",
            env=env or {},
        )
    )


def follow(
    proc: RunningProcess,
    spec: LoadSpec,
    window: Window,
    window_start: Callable[[], float | None],
    on_progress: Callable[[float], None] | None,
    slack_s: float,
) -> float:
    """Wait for the generator to finish; open and close the window; return its CPU (% of one
    core) over the window. `window_start()` gives the wall-clock start once it is known."""
    started = time.monotonic()
    limit = spec.warmup_s + spec.duration_s + slack_s + 60.0
    opens_at: float | None = None
    sampler: TreeSampler | None = None
    cpu_percent = 0.0
    state = "waiting"  # → "open" → "closed"
    while proc.exit_code() is None:
        now = time.time()
        if opens_at is None:
            opens_at = window_start()
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
            elapsed = now - opens_at + spec.warmup_s
            on_progress(max(0.0, min(elapsed, spec.warmup_s + spec.duration_s)))
        if time.monotonic() - started > limit:
            raise LoadError(f"the load generator did not finish within {limit:.0f} s")
        time.sleep(0.05)
    if state == "open":
        window.close()
        assert sampler is not None
        cpu_percent = sampler.stop().cpu_percent
    elif state == "waiting":
        raise LoadError(f"exited with status {proc.exit_code()} before the measured window")
    return cpu_percent


def load_stats(
    *,
    engine: str,
    spec: LoadSpec,
    histogram: str,
    uncorrected_histogram: str | None,
    slip_histogram: str | None,
    requests: int,
    sent: int,
    errors: int,
    error_kinds: dict[str, int],
    duration_s: float,
    generator_cpu_percent: float,
    in_flight_cap_hit: bool,
) -> LoadStats:
    duration = max(duration_s, 1e-9)
    return LoadStats(
        engine=engine,
        load_model=spec.load_model,
        target_rps=spec.target_rps,
        achieved_rps=round(sent / duration, 2),
        requests=requests,
        errors=errors,
        error_kinds=error_kinds,
        duration_s=round(duration, 3),
        throughput_rps=round((requests - errors) / duration, 2),
        latency_ms=percentiles(decode(histogram)),
        uncorrected_ms=percentiles(decode(uncorrected_histogram))
        if uncorrected_histogram
        else None,
        slip_ms=percentiles(decode(slip_histogram)) if slip_histogram else None,
        histogram=histogram,
        uncorrected_histogram=uncorrected_histogram,
        generator_cpu_percent=round(generator_cpu_percent, 1),
        generator_cpus=len(spec.cpus),
        in_flight_cap_hit=in_flight_cap_hit,
    )
