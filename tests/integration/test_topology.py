"""Topology on real processes: `needs`, run- and trial-scoped supports with setup and reset, the
GPU an implementation asks for, and the three probes."""

from __future__ import annotations

import json
import os
import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.catalog import Pattern, load_pattern
from bench.cli import PARTS
from bench.launch.cpusets import plan
from bench.launch.deployment import Deployment, ImplFailed
from bench.launch.devices import Gpu
from bench.launch.supervisor import Supervisor, port_in_use
from bench.launch.verify import Vectors, VectorsError
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

SERVER = "tests/integration/topology_server.py"
TOML = """
pattern = "topo"
description = "topology test"
args = []

[scenario.loadgen]
path = "/healthz"

[params]
engine = "loadgen"
load_model = "open-loop"
rate = 10.0
rates = ""
arrival = "constant"
trials = 1
slo = ""
find_max = false
users = 1
spawn_rate = 1.0
warmup_s = 0.0
duration_s = 1.0
log = "LOG"

[support.db]
scope = "run"
command = ["{python}", "-m", "http.server", "{db_port}", "--bind", "127.0.0.1"]
ports = [7001]
probe = { kind = "tcp" }
setup = [["{python}", "-c", "open('{log}', 'a').write('setup {db_port}\\\\n')"]]
reset = [["{python}", "-c", "open('{log}', 'a').write('reset\\\\n')"]]

[support.core]
scope = "trial"
command = ["{python}", "SERVER", "{core_port}", "grpc"]
ports = [7002]
probe = { kind = "grpc" }

[implementations.edge]
language = "python"
command = ["{python}", "SERVER", "{port}"]
port = 7010
needs = ["db", "core"]
gpu = true

[implementations.plain]
language = "python"
command = ["{python}", "SERVER", "{port}"]
port = 7011

[implementations.metered]
language = "python"
command = ["{python}", "SERVER", "{port}", "--metrics-port", "{metrics_port}"]
port = 7012
metrics = { port = 7013, path = "/metrics" }
"""


@pytest.fixture
def offset() -> int:
    """An offset that moves this pattern's own ports onto free ones."""
    for _ in range(50):
        chosen = random.randrange(20_000, 25_000, 10)
        if not any(port_in_use(p + chosen) for p in (7001, 7002, 7010, 7011, 7012, 7013)):
            return chosen
    raise RuntimeError("no free ports found")


@pytest.fixture
def topo(tmp_path: Path) -> tuple[Pattern, Path]:
    folder = tmp_path / "topo"
    folder.mkdir()
    log = tmp_path / "supports.log"
    text = TOML.replace("SERVER", SERVER).replace("LOG", str(log))
    (folder / "system.toml").write_text(text)
    return load_pattern(folder / "system.toml", REPO, PARTS.kinds()), log


@pytest.fixture
def deploy(topo: tuple[Pattern, Path], tmp_path: Path, offset: int) -> Iterator[Deployment]:
    supervisor = Supervisor()
    with supervisor.running():
        deployment = Deployment(
            pattern=topo[0], probes=PARTS.probes, cpus=plan(sorted(os.sched_getaffinity(0))),
            port_offset=offset, run_dir=tmp_path / "run", supervisor=supervisor,
        )  # fmt: skip
        yield deployment
        deployment.stop_run_scoped()


def env_of(deploy: Deployment, name: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{deploy.port(name)}/env", timeout=5) as r:
        data: dict[str, object] = json.loads(r.read())
    return data


def test_needs_and_scopes(deploy: Deployment, topo: tuple[Pattern, Path]) -> None:
    pattern, log = topo
    params = pattern.resolve_params("default", {})
    first = deploy.start("edge", params, "t1")
    db_pid = deploy._run_scoped["db"].pid
    core_pid = first.supports[0].pid
    deploy.stop(first)
    second = deploy.start("edge", params, "t2")
    assert deploy._run_scoped["db"].pid == db_pid  # run scope: started once
    assert second.supports[0].pid != core_pid  # trial scope: afresh
    deploy.stop(second)
    plain = deploy.start("plain", params, "t3")
    assert plain.supports == []  # needs nothing, gets nothing
    deploy.stop(plain)
    db_port = deploy.ports([7001])[0]
    assert log.read_text().splitlines() == [f"setup {db_port}", "reset", "reset"]


def test_a_gpu_goes_only_to_who_asked_for_one(
    deploy: Deployment, topo: tuple[Pattern, Path]
) -> None:
    params = topo[0].resolve_params("default", {})
    for name, cuda, device in (("edge", "", "cpu"), ("plain", "", None)):
        started = deploy.start(name, params, "gpu")
        assert env_of(deploy, name)["cuda"] == cuda
        assert deploy.device(name) == device
        deploy.stop(started)
    deploy.gpus = [Gpu(3, "NVIDIA H200")]
    started = deploy.start("edge", params, "gpu")
    assert env_of(deploy, "edge")["cuda"] == "3"
    assert deploy.device("edge") == "cuda:0 (NVIDIA H200; physical GPU 3)"
    deploy.stop(started)


def test_a_run_scoped_support_that_fails_its_setup_fails_who_needs_it(
    deploy: Deployment, topo: tuple[Pattern, Path], tmp_path: Path
) -> None:
    params = {**topo[0].resolve_params("default", {}), "log": str(tmp_path / "no" / "such")}
    with pytest.raises(ImplFailed, match=r"support db: setup .* exited with 1"):
        deploy.start("edge", params, "t")
    with pytest.raises(ImplFailed, match="support db: setup"):  # remembered, not retried
        deploy.start("edge", params, "t")
    deploy.stop(deploy.start("plain", params, "t"))  # who does not need it goes on


def test_grpc_vectors_check_codes_and_messages(
    deploy: Deployment, topo: tuple[Pattern, Path]
) -> None:
    params = topo[0].resolve_params("default", {})
    started = deploy.start("edge", params, "v")
    port = deploy.ports([7002])[0]
    probe, spec = (
        PARTS.probes["grpc"],
        PARTS.probes["grpc"].spec_model.model_validate(
            {"proto_modules": ["grpc_health.v1.health_pb2"]}
        ),
    )
    method = "/grpc.health.v1.Health/Check"
    vectors = Vectors.model_validate({"cases": [
        {"name": "serving", "request": {"method": method, "message": {"service": "demo"}},
         "expect": {"message": {"status": "SERVING"}}},
        {"name": "unknown", "request": {"method": method, "message": {"service": "nope"}},
         "expect": {"code": "NOT_FOUND"}},
        {"name": "wrong", "request": {"method": method, "message": {"service": "demo"}},
         "expect": {"code": "INVALID_ARGUMENT"}},
    ]})  # fmt: skip
    assert probe.verify(spec, "127.0.0.1", port, vectors) == [
        "wrong: code: expected INVALID_ARGUMENT, got OK"
    ]
    bad = Vectors.model_validate({"cases": [
        {"name": "typo", "request": {"method": "/grpc.health.v1.Health/Chek"}, "expect": {}},
    ]})  # fmt: skip
    with pytest.raises(VectorsError, match=r"typo: /grpc\.health\.v1\.Health/Chek: no such method"):
        probe.verify(spec, "127.0.0.1", port, bad)
    deploy.stop(started)


def test_an_implementation_s_own_metrics_port_is_shifted_and_given(
    deploy: Deployment, topo: tuple[Pattern, Path], offset: int
) -> None:
    pattern, _ = topo
    started = deploy.start("metered", pattern.resolve_params("default", {}), "t")
    try:
        proc = started.system()
        assert proc.spec.ports == [7012 + offset, 7013 + offset]
        assert psutil.Process(proc.pid).cmdline()[-2:] == ["--metrics-port", str(7013 + offset)]
        assert deploy.metrics_url("metered") == f"http://127.0.0.1:{7013 + offset}/metrics"
    finally:
        deploy.stop(started)
