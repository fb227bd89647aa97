"""The rpc locustfile under the harness's Locust engine, against the Go gRPC and REST servers.

Each case is one short trial as `patternbench run rpc --engine locust` makes it
(`bench.engines.locust.run` with a `[scenario.locust]` table): every call is recorded into the
harness's HDR histograms, over both transports, closed-loop and open-loop, unary and streaming,
and a request the servers refuse is counted as the system's refusal, not a crash of the generator.
"""

from __future__ import annotations

import os
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

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

LOCUSTFILE = "scenarios/locust/rpc.py"
#: transport → (closed-loop user, open-loop user), as the rpc system.toml names them.
USERS = {
    "grpc": ("RecommendUser", "OpenLoopRecommend"),
    "rest": ("RestRecommendUser", "OpenLoopRestRecommend"),
}
WARMUP_S, DURATION_S = 0.5, 1.0
#: What each trial asks for, small enough for a shared 2-core machine.
USERS_N, USER_RATE, RATE = 2, 25.0, 40.0


class Server(NamedTuple):
    addr: str
    """Where it serves its calls."""
    metrics: str
    """Where it serves /metrics."""


@pytest.fixture(scope="module")
def servers(go_binaries: None) -> Iterator[dict[str, Server]]:
    """go-grpc and go-rest on free ports, for every case of this module."""
    grpc = Proc(["go/bin/rpcgrpc", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
    rest = Proc(["go/bin/rpcrest", "--listen", "127.0.0.1:0"])
    try:
        grpc_addr, grpc_metrics = grpc.wait_listening(2)
        (rest_addr,) = rest.wait_listening()
        yield {"grpc": Server(grpc_addr, grpc_metrics), "rest": Server(rest_addr, rest_addr)}
    finally:
        rest.stop()
        grpc.stop()


def trial(tmp_path: Path, server: Server, transport: str, open_loop: bool, *args: str) -> LoadStats:
    """One trial of the locustfile through the harness's Locust engine."""
    host, port = server.addr.rsplit(":", 1)
    closed_loop_user, open_loop_user = USERS[transport]
    table = locust_engine.LocustTable(
        locustfile=LOCUSTFILE,
        args=["--user-rate", str(USER_RATE), *args],
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


def answered(server: Server, method: str, code: str) -> float:
    return metric(server.metrics, "rpc_requests_total", method=method, code=code)


@pytest.mark.parametrize(
    ("transport", "open_loop", "call"),
    [
        ("grpc", False, "unary"),
        ("grpc", True, "stream"),
        ("rest", False, "stream"),
        ("rest", True, "unary"),
    ],
)
def test_calls_are_recorded_without_errors(
    servers: dict[str, Server], tmp_path: Path, transport: str, open_loop: bool, call: str
) -> None:
    server = servers[transport]
    method = "StreamRecommendations" if call == "stream" else "Recommend"
    before = answered(server, method, "OK")
    args = ["--call", call, "--limit", "10", "--features", "8", "--page-size", "3",
            "--categories", "books,MUSIC", "--users-space", "50"]  # fmt: skip
    stats = trial(tmp_path, server, transport, open_loop, *args)

    assert (stats.errors, stats.error_kinds) == (0, {}), stats.error_kinds
    expected = RATE * DURATION_S if open_loop else USERS_N * USER_RATE * DURATION_S
    assert 0.5 * expected <= stats.requests <= 1.5 * expected
    assert decode(stats.histogram).get_total_count() == stats.requests
    assert 0 < stats.latency_ms.p50 <= stats.latency_ms.max < 1000
    assert (stats.uncorrected_ms is not None) == open_loop
    # The server answered them all (and the warm-up's and the slack's).
    assert answered(server, method, "OK") - before >= stats.requests


@pytest.mark.parametrize(
    ("transport", "kind"), [("grpc", "grpc InvalidArgument"), ("rest", "HTTP 400")]
)
def test_a_refused_request_is_recorded_as_the_systems_error(
    servers: dict[str, Server], tmp_path: Path, transport: str, kind: str
) -> None:
    server = servers[transport]
    before = answered(server, "Recommend", "INVALID_ARGUMENT")
    stats = trial(tmp_path, server, transport, False, "--limit", "-1")

    assert stats.requests > 0
    assert stats.error_kinds == {kind: stats.requests}
    assert stats.errors == stats.requests
    assert decode(stats.histogram).get_total_count() == stats.requests
    # Refusals answered by the system, not failures of the generator (the report's split).
    assert headroom.split_errors(stats.error_kinds).system_total == stats.errors
    assert answered(server, "Recommend", "INVALID_ARGUMENT") - before >= stats.requests
