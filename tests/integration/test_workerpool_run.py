"""`patternbench run workerpool` end to end, kept short: four services and the pool study."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import pytest

from bench.catalog import load_pattern
from bench.cli import PARTS
from bench.launch.cpusets import plan
from bench.report.write import render
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.store import load_run
from bench.studies.pools_data import from_study
from tests.integration.conftest import REPO, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

#: A light task (≈0.2 ms of Python), two rates, one trial each, and a miniature study.
SHORT_POOLS = {
    "rounds": "1000",
    "rates": "100,200",
    "trials": "1",
    "slo": "p99<=200ms,errors<=1%",
    "inprocess_scaling_ms": "1",
    "inprocess_task_ms": "0.5,2",
    "inprocess_hash_sizes": "4096",
    "inprocess_batch_s": "0.02",
    "inprocess_processes": "1",
    "inprocess_values": "2",
    "inprocess_go_count": "2",
}


@shared_machine
def test_every_service_is_verified_and_measured_and_the_study_reported(
    options: Callable[..., RunOptions],
) -> None:
    pattern = load_pattern(REPO / "systems" / "workerpool" / "system.toml", REPO, PARTS.kinds())
    # As the command line plans it for this pattern (system_cpus = "all").
    cpus = plan(sorted(os.sched_getaffinity(0)), system_all=pattern.system_cpus == "all")
    opts = dataclasses.replace(options(**SHORT_POOLS), cpusets=cpus)
    runner = PatternRun(pattern, opts, QuietProgress(), PARTS)
    runner.execute()
    result = load_run(runner.run_dir / "run.json")

    names = ["python-sync", "python-threads", "python-processes", "go"]
    assert [i.name for i in result.implementations] == names
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.verify_problems, impl.stderr_tail)
        assert [p.target_rps for p in impl.points] == [100.0, 200.0]
        for point in impl.points:
            (trial,) = point.trials
            assert trial.load.errors == 0, (impl.name, trial.load.error_kinds)
            served = trial.server_metrics['workerpool_requests_total{code="200"}']
            assert abs(served - trial.load.requests) <= max(10, 0.05 * trial.load.requests)
    # A process pool's memory is its whole tree: the service, the forkserver and two workers.
    rss = {i.name: i.points[0].trials[0].process.peak_rss_bytes for i in result.implementations}
    assert rss["python-processes"] > 1.5 * rss["python-sync"]

    (stored,) = result.studies
    study = from_study(stored)
    assert stored.errors == []
    impls = {m.implementation for m in study.measurements}
    assert impls == {"python-sync", "python-threads", "python-processes", "go"}
    assert {m.task_ms for m in study.measurements} == {0.5, 1.0, 2.0}

    sections = [PARTS.studies[s.kind].section(s, result, runner.run_dir) for s in result.studies]
    md, _ = render(result, runner.run_dir, sections)
    text = md.read_text()
    assert text.index("## Reading") < text.index("## Verdicts") < text.index("## Pools without")
    assert result.environment.cpusets.shared  # the system has every CPU, the generator one
    assert "efficiency at 2 workers" in text or len(study.cpus) < 2
    assert "highest rate meeting p99 ≤ 200 ms" in text
    assert "Free-threaded CPython:" in text
