"""Fixtures for tests that run the harness on real processes over loopback."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from bench.catalog import Pattern, load_catalog, load_pattern
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


def _catalog_ports() -> list[int]:
    """Every port the patterns' system.toml files name: implementations, metrics, supports."""
    ports: list[int] = []
    for pattern in load_catalog(REPO, PARTS.kinds()).values():
        for impl in pattern.implementations.values():
            ports.append(impl.port)
            if impl.metrics is not None and impl.metrics.port is not None:
                ports.append(impl.metrics.port)
        ports += [p for support in pattern.support.values() for p in support.ports]
    return ports


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


@pytest.fixture
def port_offset() -> int:
    """An offset that moves every pattern's ports onto free ones, so tests run beside anything.

    The moved ports stay out of the kernel's ephemeral range: there an outgoing connection of the
    run itself (the generator's, a proxy's to its core) may hold the very port a server is about
    to listen on, and its start fails with "already in use".
    """
    ports = _catalog_ports()
    low, high = _ephemeral_range()
    span = max(ports) - min(ports)
    choices = [
        o
        for o in range(10_000, 56_000, 10)
        if max(ports) + o < low or (min(ports) + o > high and max(ports) + o < 65_536)
    ]
    for _ in range(50):
        offset = random.choice(choices)
        if not any(port_in_use(p + offset) for p in ports):
            return offset
    raise RuntimeError(f"no free ports found for {len(ports)} ports spanning {span}")


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
