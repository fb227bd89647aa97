"""Builders of synthetic results for unit tests of pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.models import (
    CpuSets,
    Environment,
    ImplementationResult,
    LoadModel,
    LoadStats,
    ProcessStats,
    RunResult,
    Scenario,
    Trial,
)
from bench.stats.headroom import invalid_reasons
from bench.stats.percentiles import encode, new_histogram, percentiles
from bench.stats.summary import make_point


def make_load(
    latencies_us: list[int],
    *,
    generator_cpu: float = 20.0,
    target: float | None = 100.0,
    achieved: float | None = None,
    slip_us: int = 200,
    errors: int = 0,
    model: LoadModel = "open-loop",
) -> LoadStats:
    hist, slip = new_histogram(), new_histogram()
    for value in latencies_us:
        hist.record_value(value)
        slip.record_value(slip_us)
    open_loop = model == "open-loop"
    return LoadStats(
        engine="loadgen" if open_loop else "locust",
        load_model=model,
        target_rps=target,
        achieved_rps=achieved if achieved is not None else (target or len(latencies_us) / 10.0),
        requests=len(latencies_us),
        errors=errors,
        error_kinds={"HTTP 503": errors} if errors else {},
        duration_s=10.0,
        throughput_rps=(len(latencies_us) - errors) / 10.0,
        latency_ms=percentiles(hist),
        uncorrected_ms=percentiles(hist) if open_loop else None,
        slip_ms=percentiles(slip) if open_loop else None,
        histogram=encode(hist),
        uncorrected_histogram=encode(hist) if open_loop else None,
        generator_cpu_percent=generator_cpu,
        generator_cpus=1,
    )


def make_trial(
    index: int, load: LoadStats, server_p99_ms: tuple[float, float] = (1.0, 2.0)
) -> Trial:
    reasons = invalid_reasons(load)
    return Trial(
        index=index,
        load=load,
        process=ProcessStats(cpu_seconds=1.0, cpu_percent=10.0 + index, peak_rss_bytes=20 * 2**20),
        server_metrics={'fanout_requests_total{code="200"}': float(load.requests)},
        server_latency_ms={"p99_low": server_p99_ms[0], "p99_high": server_p99_ms[1]},
        valid=not reasons,
        invalid_reasons=reasons,
    )


def make_run(*impls: ImplementationResult, run_id: str = "r1", slo: str | None = None) -> RunResult:
    rates = sorted({p.target_rps for i in impls for p in i.points if p.target_rps is not None})
    return RunResult(
        run_id=run_id,
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        scenario=Scenario(
            pattern="fanout",
            profile="quick",
            engine="loadgen",
            load_model="open-loop",
            arrival="constant",
            rates=rates,
            trials=3,
            slo=slo,
            engine_spec={"path": "/catalog?k={k}"},
            params={"users": 4, "warmup_s": 1.0, "duration_s": 10.0},
        ),
        environment=Environment(
            git_sha="abc",
            git_dirty=False,
            hostname="h",
            platform="linux",
            cpu_model="cpu",
            cpu_count=2,
            cpusets=CpuSets(system=[1], loadgen=[0], support=[0], shared=False),
            python="3.11.7",
            go="go1.26",
            libraries={"locust": "2.47.0"},
        ),
        implementations=list(impls),
    )


def measured(
    name: str,
    latencies_us: list[int],
    *,
    rates: tuple[float, ...] = (100.0,),
    trials: int = 3,
    knee: float | None = None,
    **load: float,
) -> ImplementationResult:
    """An implementation measured at each rate, `trials` times, latencies scaled by rate."""
    points = []
    for rate in rates:
        scale = rate / rates[0]
        trial_list = [
            make_trial(i, make_load([round(v * scale * (1 + 0.01 * i)) for v in latencies_us],
                                    target=rate, **load))  # type: ignore[arg-type]
            for i in range(trials)
        ]  # fmt: skip
        points.append(make_point(rate, trial_list))
    return ImplementationResult(name=name, language="go", status="ok", points=points, knee_rps=knee)


@pytest.fixture
def sample_run() -> RunResult:
    return make_run(
        measured("go", [1000 + i for i in range(1000)]),
        ImplementationResult(name="python-asyncio", language="python", status="failed",
                             error="exited with status 1 during the run", stderr_tail="boom"),
    )  # fmt: skip
