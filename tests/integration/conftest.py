"""Fixtures for tests that run the harness on real processes over loopback."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from bench.catalog import Pattern, load_pattern
from bench.cli import PARTS
from bench.launch.cpusets import plan
from bench.launch.supervisor import port_in_use
from bench.run import RunOptions
from tests.integration.service_process import Proc

REPO = Path(__file__).resolve().parents[2]
FANOUT = REPO / "systems" / "fanout"

#: Tests whose verdict depends on the generator keeping its schedule: on a shared 2-core machine a
#: neighbour's burst (CPU steal, seen at 25% here) can make loadgen send late, which the harness
#: rightly marks invalid. Such a test runs once more before it fails (pytest-rerunfailures; the
#: rerun is reported as "R"): a real fault fails both runs.
shared_machine = pytest.mark.flaky(reruns=1, reruns_delay=5)

#: Hypothesis profiles of the property-based tests (test_contract_fuzz.py): "ci" (the default,
#: in ``make test``: a few hundred requests per endpoint, the same ones every run) and "soak"
#: (thousands, fresh ones each run), chosen with PATTERNBENCH_HYPOTHESIS_PROFILE=soak.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "soak", max_examples=5000, deadline=None, database=None, suppress_health_check=_SLOW_IS_FINE
)
settings.load_profile(os.environ.get("PATTERNBENCH_HYPOTHESIS_PROFILE", "ci"))

#: Short enough for CI, long enough for a few hundred requests per implementation and trial.
SHORT = {"duration_s": "2", "warmup_s": "1", "rate": "150", "rates": "", "trials": "2",
         "users": "4", "user_rate": "25", "cooldown_s": "0.2"}  # fmt: skip


@pytest.fixture(scope="session")
def go_binaries() -> None:
    """Build the Go binaries once, as a fresh clone needs."""
    subprocess.run(["go", "build", "-o", "bin/", "./cmd/..."], cwd=REPO / "go", check=True)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes started by a test (see service_process.py); all stopped at its end."""
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


@pytest.fixture
def port_offset() -> int:
    """An offset that moves every pattern's ports onto free ones, so tests run beside anything."""
    ports = [8081, 8082, 9101, 9102, 8091, 8092, 8093, 8094]
    for _ in range(50):
        offset = random.randrange(20_000, 40_000, 10)
        if not any(port_in_use(p + offset) for p in ports):
            return offset
    raise RuntimeError("no free ports found")


PatternFactory = Callable[..., Pattern]


@pytest.fixture
def fanout_variant(tmp_path: Path) -> PatternFactory:
    """The fan-out pattern with edits to its system.toml or vectors, run from the repository."""

    def make(
        toml: Callable[[str], str] = lambda t: t, vectors: Callable[[str], str] = lambda v: v
    ) -> Pattern:
        folder = tmp_path / "fanout"
        folder.mkdir(exist_ok=True)
        (folder / "system.toml").write_text(toml((FANOUT / "system.toml").read_text()))
        (folder / "vectors.json").write_text(vectors((FANOUT / "vectors.json").read_text()))
        return load_pattern(folder / "system.toml", REPO, PARTS.kinds())

    return make


@pytest.fixture
def options(tmp_path: Path, port_offset: int) -> Callable[..., RunOptions]:
    def make(impls: list[str] | None = None, **params: str) -> RunOptions:
        return RunOptions(
            profile="quick",
            overrides={**SHORT, **params},
            implementations=impls,
            cpusets=plan(sorted(os.sched_getaffinity(0))),
            runs_dir=tmp_path / "runs",
            run_id="test",
            port_offset=port_offset,
        )

    return make
