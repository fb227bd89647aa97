"""The pool study for real, on the worker-pool pattern's own table: pyperf worker processes and
`go test -bench`, kept short."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench.studies.base import StudyContext
from bench.studies.pools import PoolStudy
from bench.studies.pools_data import from_study
from bench.studies.pools_figures import off_size
from bench.studies.pools_plan import PoolSpec
from bench.templates import render_table
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

#: The parameters the table's placeholders name, set small.
SHORT: dict[str, Any] = {
    "inprocess": True,
    "inprocess_scaling_ms": 2.0,
    "inprocess_task_ms": "0.5,2",
    "inprocess_hash_sizes": "4096",
    "inprocess_batch_s": 0.02,
    "inprocess_processes": 1,
    "inprocess_values": 2,
    "inprocess_go_count": 2,
    "kernel": "spin",
    "rounds": 5000,
}


def pool_spec(names: set[str]) -> PoolSpec:
    """The workerpool pattern's [studies.pools] table, rendered with SHORT, for `names` only."""
    raw = tomllib.loads((REPO / "systems" / "workerpool" / "system.toml").read_text())
    table = {k: v for k, v in raw["studies"]["pools"].items() if k not in ("kind", "when")}
    table["implementations"] = [i for i in table["implementations"] if i["name"] in names]
    return PoolSpec.model_validate(render_table(table, SHORT))


def test_a_short_study_times_every_configuration_with_both_tools(tmp_path: Path) -> None:
    spec = pool_spec({"python-sync", "python-threads", "go"})
    cpus = sorted(os.sched_getaffinity(0))[:2]
    said: list[str] = []
    ctx = StudyContext(
        root=REPO,
        folder=REPO / "systems" / "workerpool",
        params=SHORT,
        cpus=cpus,
        workdir=tmp_path / "studies" / "pools",
        say=said.append,
    )
    study = PoolStudy().run("pools", spec, ctx)

    assert study.errors == []
    assert (study.kind, study.name) == ("pools", "pools")
    assert study.spec["scaling_ms"] == 2.0
    assert said[0] == "calibrating the kernels of python where the tasks run"
    results = from_study(study)
    assert set(results.calibration) == {"python/spin", "python/hash/4096", "go/spin",
                                        "go/hash/4096"}  # fmt: skip
    # A Go spin round is compiled arithmetic; a Python one runs bytecode.
    assert results.calibration["go/spin"].median < results.calibration["python/spin"].median
    for m in results.measurements:
        assert m.source == ("go-bench" if m.implementation == "go" else "pyperf")
        assert len(m.batch_seconds) == 2  # go -count 2; pyperf 1 process × 2 values
        assert m.throughput.low <= m.throughput.median <= m.throughput.high
        assert m.measured_task_ms is not None
    # Calibrated where the tasks run, every task is the size asked to within the noise of a shared
    # machine (a calibration in the wrong process or language would be off by 10 to 100 times),
    # and the report names exactly those beyond the ±10% tolerance.
    for m in results.measurements:
        assert m.measured_task_ms is not None
        assert 0.5 < m.measured_task_ms / m.task_ms < 2.0, m
    missed = {id(m) for m in off_size(results)}
    for m in results.measurements:
        assert m.measured_task_ms is not None
        assert (id(m) in missed) == (abs(m.measured_task_ms / m.task_ms - 1) > 0.10)
    workers = {m.workers for m in results.measurements if m.implementation == "python-threads"}
    assert workers == set(range(1, len(cpus) + 1))


def test_pyperf_compares_the_suites_of_two_implementations(tmp_path: Path) -> None:
    spec = pool_spec({"python-sync", "python-threads"}).model_copy(
        update={"hash_sizes": [], "task_ms": [2.0]}
    )
    ctx = StudyContext(root=REPO, folder=REPO / "systems" / "workerpool", params=SHORT,
                       cpus=sorted(os.sched_getaffinity(0))[:1], workdir=tmp_path)  # fmt: skip
    study = PoolStudy().run("pools", spec, ctx)
    assert study.errors == []
    assert {p.name for p in tmp_path.glob("*.json")} == {"python-sync.json",
                                                         "python-threads.json"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", "--table",
         str(tmp_path / "python-sync.json"), str(tmp_path / "python-threads.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no benchmark in common" not in done.stdout + done.stderr
    assert "spin-2ms-w1" in done.stdout
