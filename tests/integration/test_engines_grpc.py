"""`patternbench engines`' gRPC check on a tiny budget, against a real go-grpc server:
ghz's report read from a real run (when ghz is installed: the tests never download it), and one
step of loadgen's ceiling search at a low rate. No figure is asserted: those are the benchmark's."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.engines import check, check_grpc
from bench.launch.cpusets import plan
from bench.models import CpuSets
from tests.integration.conftest import REPO

pytestmark = [pytest.mark.integration]


def installed_ghz() -> Path | None:
    """The ghz of PATTERNBENCH_GHZ, else the one `make bench-engines` pins, if installed."""
    given = check_grpc.ghz_binary()
    if isinstance(given, Path):
        return given
    pinned = re.search(r"^GHZ_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert pinned is not None
    path = REPO / ".tools" / f"ghz-{pinned.group(1)}" / "ghz"
    return path if os.access(path, os.X_OK) else None


@pytest.fixture
def cpus() -> CpuSets:
    return plan(sorted(os.sched_getaffinity(0)))


@pytest.fixture(scope="module")
def target() -> check_grpc.Target:
    return check_grpc.find_target(REPO, "rpc/go-grpc", PARTS.kinds())


@pytest.fixture
def server(
    go_binaries: None, target: check_grpc.Target, cpus: CpuSets, tmp_path: Path
) -> Iterator[int]:
    with check_grpc.grpc_server(REPO, target, cpus.system, tmp_path) as port:
        yield port


def test_a_real_ghz_report_is_read(server: int, target: check_grpc.Target, cpus: CpuSets) -> None:
    ghz = installed_ghz()
    if ghz is None:
        pytest.skip("ghz is not installed (`make bench-engines` installs it; tests do not)")
    run = check_grpc.run_ghz(REPO, ghz, target, server, cpus.loadgen, 4, 1, seconds=1)
    assert (run.concurrency, run.connections) == (4, 1)
    assert run.ok > 0
    assert run.calls >= run.ok
    assert run.seconds > 0
    assert set(run.errors) <= {"Unavailable", "Canceled"}  # at most the calls cut off at the end


def test_one_step_of_loadgens_grpc_ceiling_search(
    server: int, target: check_grpc.Target, cpus: CpuSets, tmp_path: Path
) -> None:
    said: list[str] = []
    request = check_grpc.grpc_request(
        target, server, 200.0, cpus.loadgen, tmp_path, REPO, duration_s=1.0, warmup_s=0.5
    )
    step = check.loadgen_step(request, said.append, "loadgen gRPC", "calls/s")
    assert step.rate == 200.0
    assert step.stats.engine == "loadgen"
    assert step.stats.requests > 0
    assert step.stats.errors == 0, step.stats.error_kinds
    assert step.reasons == check.off_schedule(step.stats, 200.0)
    (line,) = said
    assert line.startswith("loadgen gRPC at 200 calls/s: achieved ")
