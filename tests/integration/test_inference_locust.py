"""The inference locustfiles under the harness's Locust engine, against the pattern's Python
servers: scenarios/locust/inference.py against the HTTP server (systems/inference/service.py),
scenarios/locust/inference_grpc.py against the gRPC one (systems/inference/grpc_service.py).

Each case is one short trial as `patternbench run inference --param engine=locust` makes it
(`bench.engines.locust.run` with the system.toml's `[scenario.locust]` or
`[scenarios.grpc.locust]` table): every request is recorded into the harness's HDR histograms,
closed-loop and open-loop, and a request the server refuses (more samples than
`--max-request-samples`: 413 / RESOURCE_EXHAUSTED) is counted as the system's refusal, not a
crash of the generator. Both servers start once for the module, on the CPU, with a model cache
of their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from bench.engines import locust as locust_engine
from bench.engines.spec import LoadSpec
from bench.engines.url import NoWindow
from bench.launch.supervisor import Supervisor
from bench.models import LoadStats
from bench.stats import headroom
from bench.stats.percentiles import decode
from tests.integration.conftest import REPO
from tests.integration.service_process import Proc, metric

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: The servers' model cache (systems.inference.model.CACHE_ENV, named here so that this module
#: does not import torch).
CACHE_ENV = "PATTERNBENCH_MODEL_CACHE"
#: A request may carry this many samples at most; the refusal case sends one more.
MAX_SAMPLES = 2
FLAGS = ["--policy", "dynamic", "--device", "cpu", "--threads", "1",
         "--max-request-samples", str(MAX_SAMPLES)]  # fmt: skip
#: transport → the locustfile and its (closed-loop user, open-loop user), as system.toml names them.
LOCUST: dict[str, tuple[str, str, str]] = {
    "http": ("scenarios/locust/inference.py", "InferUser", "OpenLoopInfer"),
    "grpc": ("scenarios/locust/inference_grpc.py", "InferGrpcUser", "OpenLoopInferGrpc"),
}
WARMUP_S, DURATION_S = 0.5, 1.0
#: What each trial asks for, small enough for a shared 2-core machine.
USERS_N, USER_RATE, RATE = 2, 20.0, 30.0


class Server(NamedTuple):
    addr: str
    """Where it serves its requests."""
    metrics: str
    """Where it serves /metrics."""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """The HTTP and the gRPC server (dynamic batching, the mlp), started at once."""
    env = {CACHE_ENV: str(tmp_path_factory.mktemp("models"))}
    http = Proc([sys.executable, "-m", "systems.inference.service",
                 "--listen", "127.0.0.1:0", *FLAGS], env=env)  # fmt: skip
    grpc = Proc([sys.executable, "-m", "systems.inference.grpc_service", "--listen", "127.0.0.1:0",
                 "--metrics-listen", "127.0.0.1:0", *FLAGS], env=env)  # fmt: skip
    try:
        (http_addr,) = http.wait_listening(timeout=90)
        grpc_addr, grpc_metrics = grpc.wait_listening(2, timeout=90)
        yield {"http": Server(http_addr, http_addr), "grpc": Server(grpc_addr, grpc_metrics)}
    finally:
        grpc.stop()
        http.stop()


def trial(
    tmp_path: Path, server: Server, transport: str, open_loop: bool, samples: int
) -> LoadStats:
    """One trial of the transport's locustfile through the harness's Locust engine."""
    host, port = server.addr.rsplit(":", 1)
    locustfile, closed_loop_user, open_loop_user = LOCUST[transport]
    table = locust_engine.LocustTable(
        locustfile=locustfile,
        args=["--user-rate", str(USER_RATE), "--model", "mlp", "--samples", str(samples)],
        closed_loop_user=closed_loop_user,
        open_loop_user=open_loop_user,
    )
    spec = LoadSpec(
        host=host,
        port=int(port),
        load_model="open-loop" if open_loop else "closed-loop",
        duration_s=DURATION_S,
        warmup_s=WARMUP_S,
        cpus=sorted(os.sched_getaffinity(0)),
        workdir=tmp_path / "locust",
        rate=RATE if open_loop else None,
        users=USERS_N,
        spawn_rate=float(USERS_N),
        root=REPO,
        tools_root=REPO,
    )
    supervisor = Supervisor()
    with supervisor.running():
        return locust_engine.run(table, spec, supervisor, NoWindow())


def answered(server: Server, code: str) -> float:
    """The server's answers of this HTTP status so far (a gRPC status counts as its HTTP one)."""
    return metric(server.metrics, "inference_requests_total", code=code)


@pytest.mark.parametrize("open_loop", [False, True], ids=["closed-loop", "open-loop"])
@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_requests_are_recorded_without_errors(
    servers: dict[str, Server], tmp_path: Path, transport: str, open_loop: bool
) -> None:
    server = servers[transport]
    before = answered(server, "200")
    stats = trial(tmp_path, server, transport, open_loop, MAX_SAMPLES)

    assert (stats.errors, stats.error_kinds) == (0, {}), stats.error_kinds
    assert stats.requests > 0
    assert decode(stats.histogram).get_total_count() == stats.requests
    assert 0 < stats.latency_ms.p50 <= stats.latency_ms.max
    assert (stats.uncorrected_ms is not None) == open_loop
    # The server answered them all (and the warm-up's and the slack's).
    assert answered(server, "200") - before >= stats.requests


@pytest.mark.parametrize(
    ("transport", "kind"), [("http", "HTTP 413"), ("grpc", "grpc ResourceExhausted")]
)
def test_a_refused_request_is_recorded_as_the_systems_error(
    servers: dict[str, Server], tmp_path: Path, transport: str, kind: str
) -> None:
    server = servers[transport]
    before = answered(server, "413")
    stats = trial(tmp_path, server, transport, False, MAX_SAMPLES + 1)

    assert stats.requests > 0
    assert stats.error_kinds == {kind: stats.requests}
    assert stats.errors == stats.requests
    assert decode(stats.histogram).get_total_count() == stats.requests
    # Refusals answered by the system, not failures of the generator (the report's split).
    assert headroom.split_errors(stats.error_kinds).system_total == stats.errors
    assert answered(server, "413") - before >= stats.requests
