"""`patternbench load` as a user types it: durations with units, p95, and a gRPC method."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.launch.grpc_probe import GrpcProbe, GrpcSpec
from bench.launch.probes import http_ready
from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use
from tests.integration.conftest import REPO
from tests.integration.test_cli import patternbench

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]


def grpc_ready(port: int) -> Callable[[], bool]:
    return lambda: GrpcProbe().ready(GrpcSpec(), "127.0.0.1", port)


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """tests/integration/topology_server.py on a free port, HTTP or (param "grpc") gRPC."""
    port = next(p for p in random.sample(range(20_000, 25_000), 50) if not port_in_use(p))
    grpc = getattr(request, "param", "") == "grpc"
    supervisor = Supervisor()
    with supervisor.running():
        supervisor.start(LaunchSpec(
            name="server", cwd=REPO, cpus=[0], ports=[port], log_path=tmp_path / "server.log",
            command=[sys.executable, "tests/integration/topology_server.py", str(port),
                     *(["grpc"] if grpc else [])],
            ready=grpc_ready(port) if grpc else http_ready("127.0.0.1", port), ready_timeout_s=15,
        ))  # fmt: skip
        yield port


def test_durations_take_units_and_the_summary_has_p95(server: int, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = patternbench(
        "load", f"http://127.0.0.1:{server}/healthz", "--rate", "200",
        "--duration", "1500ms", "--warmup", "0.5s", "--json", str(out),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(out.read_text())
    assert data["duration_s"] == pytest.approx(1.5, abs=0.05)
    assert data["requests"] == pytest.approx(300, abs=5)
    corrected = data["latency_ms"]["corrected"]
    assert corrected["p90"] <= corrected["p95"] <= corrected["p99"]
    assert "p95" in done.stdout


def test_a_bad_duration_is_refused_in_one_line() -> None:
    done = patternbench("load", "http://127.0.0.1:1/", "--duration", "soon")
    assert done.returncode == 2
    assert "'soon' is not a duration like 500ms, 30s, 2m" in done.stderr


@pytest.mark.parametrize("server", ["grpc"], indirect=True)
def test_loadgen_calls_a_grpc_method_from_json(server: int, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = patternbench(
        "load", f"grpc://127.0.0.1:{server}", "--rate", "100", "--duration", "1s",
        "--warmup", "500ms", "--grpc-method", "/grpc.health.v1.Health/Check",
        "--grpc-request", '{"service": "demo"}', "--proto-module", "grpc_health.v1.health_pb2",
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(out.read_text())
    assert data["requests"] == pytest.approx(100, abs=3)
    assert data["errors"] == 0, data["error_kinds"]
    done = patternbench(
        "load", f"grpc://127.0.0.1:{server}", "--rate", "100", "--duration", "1s",
        "--grpc-method", "/grpc.health.v1.Health/Nope", "--proto-module",
        "grpc_health.v1.health_pb2",
    )  # fmt: skip
    assert done.returncode == 2
    assert "/grpc.health.v1.Health/Nope: no such method" in done.stderr


@pytest.fixture
def hangup_server() -> Iterator[int]:
    """Accepts every connection and closes it at once: reachable, and never an answer."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_window_of_connection_errors_fails_and_says_so_first(
    hangup_server: int, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    done = patternbench(
        "load", f"http://127.0.0.1:{hangup_server}/", "--rate", "100", "--duration", "1s",
        "--warmup", "200ms", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("FAILED: the target did not answer: 100% of the "), done.stdout
    data = json.loads(out.read_text())
    assert data["failed"]
    assert data["error_share"] == 1.0
    assert data["problems"] == [done.stdout.splitlines()[0].removeprefix("FAILED: ")]
