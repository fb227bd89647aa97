"""The in-process pool study for real: pyperf worker processes and `go test -bench`, kept short."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.catalog import InProcessSpec
from bench.studies import pools as inprocess
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def test_a_short_study_times_every_configuration_with_both_tools(tmp_path: Path) -> None:
    spec = InProcessSpec(
        pyperf_script="scenarios/pyperf/bm_workerpool.py",
        go_package="./internal/workerpool",
        go_benchmark="BenchmarkPool",
        pools=["sync", "processes"],
    )
    params = inprocess.StudyParams(
        scaling_ms=2.0,
        task_ms=[0.5],
        hash_sizes=[4096],
        batch_s=0.02,
        pyperf_processes=1,
        pyperf_values=2,
        go_count=2,
    )
    cpus = sorted(os.sched_getaffinity(0))
    machine = inprocess.Machine(root=REPO, spec=spec, cpus=cpus, workdir=tmp_path)
    said: list[str] = []
    workers = list(range(1, min(2, len(cpus)) + 1))
    study = inprocess.run_study(machine, params, workers, said.append)

    assert study.errors == []
    assert said[0] == "calibrating the kernels"
    assert set(study.ns_per_round) == {"python/spin", "python/hash/4096", "go/spin", "go/hash/4096"}
    # A Go spin round is compiled arithmetic; a Python one runs bytecode.
    assert study.ns_per_round["go/spin"] < study.ns_per_round["python/spin"]
    planned = inprocess.plan(
        params, spec, workers, study.ns_per_round, free_threaded=study.free_threaded.available
    )
    measured = {
        (m.implementation, m.workers, m.kernel, m.size, m.task_ms) for m in study.measurements
    }
    for c in planned:
        assert (
            c.implementation,
            c.workers,
            c.variant.kernel,
            c.variant.size,
            c.task_ms,
        ) in measured
    for m in study.measurements:
        assert m.source == ("go-bench" if m.implementation == "go" else "pyperf")
        assert len(m.batch_seconds) == 2  # go -count 2; pyperf 1 process × 2 values
        assert all(s > 0 for s in m.batch_seconds)
        assert m.throughput.low <= m.throughput.median <= m.throughput.high
        assert m.tasks % max(workers) == 0
