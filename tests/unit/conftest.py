"""Builders of synthetic results for unit tests of pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.results import (
    CpuSets,
    Environment,
    ImplementationResult,
    LoadStats,
    ProcessStats,
    RunResult,
    Scenario,
)
from bench.stats import encode, new_histogram, percentiles


def make_load(latencies_us: list[int], *, generator_cpu: float = 20.0) -> LoadStats:
    hist = new_histogram()
    for value in latencies_us:
        hist.record_value(value)
    return LoadStats(
        requests=len(latencies_us),
        errors=0,
        error_kinds={},
        duration_s=10.0,
        throughput_rps=len(latencies_us) / 10.0,
        target_rps=None,
        latency_ms=percentiles(hist),
        histogram=encode(hist),
        generator_cpu_percent=generator_cpu,
        generator_saturated=generator_cpu >= 90.0,
    )


def make_run(*impls: ImplementationResult, run_id: str = "r1") -> RunResult:
    return RunResult(
        run_id=run_id,
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        scenario=Scenario(
            pattern="fanout",
            profile="quick",
            engine="locust",
            load_model="closed-loop",
            locustfile="scenarios/locust/fanout.py",
            params={"users": 4, "user_rate": 10.0, "warmup_s": 1.0, "duration_s": 10.0},
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


def measured(name: str, latencies_us: list[int], **load: float) -> ImplementationResult:
    return ImplementationResult(
        name=name,
        language="go",
        status="ok",
        load=make_load(latencies_us, **load),
        process=ProcessStats(cpu_seconds=1.0, cpu_percent=10.0, peak_rss_bytes=20 * 2**20),
        server_metrics={'fanout_requests_total{code="200"}': float(len(latencies_us))},
    )


@pytest.fixture
def sample_run() -> RunResult:
    return make_run(
        measured("go", [1000 + i for i in range(1000)]),
        ImplementationResult(name="python-asyncio", language="python", status="failed",
                             error="exited with status 1 during the run", stderr_tail="boom"),
    )  # fmt: skip
