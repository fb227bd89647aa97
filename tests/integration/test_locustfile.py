"""The fan-out locustfile runs on its own, without the harness: headless, and with the web UI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.engines.recording import OUTPUT_ENV
from bench.launch.probes import http_ready
from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use
from tests.integration.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

LOCUSTFILE = str(REPO / "scenarios" / "locust" / "fanout.py")


@pytest.fixture
def fanout_url(tmp_path: Path, port_offset: int) -> Iterator[str]:
    """The Go fan-out service and its simulated backends, as a user would start them."""
    sim_ports = [9101 + port_offset, 9102 + port_offset]
    port = 8082 + port_offset
    replicas = ",".join(f"http://127.0.0.1:{p}" for p in sim_ports)
    cpus = sorted(os.sched_getaffinity(0))
    supervisor = Supervisor()
    with supervisor.running():
        for name, command, ports in (
            ("latencysim", ["go/bin/latencysim", "--listen",
                            ",".join(f"127.0.0.1:{p}" for p in sim_ports)], sim_ports),
            ("fanout", ["go/bin/fanout", "--listen", f"127.0.0.1:{port}", "--replicas", replicas],
             [port]),
        ):  # fmt: skip
            supervisor.start(
                LaunchSpec(
                    name=name, command=command, cwd=REPO, cpus=cpus, ports=ports,
                    ready=http_ready("127.0.0.1", ports[0]), ready_timeout_s=10,
                    log_path=tmp_path / f"{name}.log",
                )
            )  # fmt: skip
        yield f"http://127.0.0.1:{port}"


def test_headless_without_the_harness_records_nothing_and_succeeds(
    fanout_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATTERNBENCH_")}
    workdir = tmp_path / "locust"
    workdir.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "2", "-r", "2",
         "-t", "3s", "--host", fanout_url, "--user-rate", "10", "--only-summary"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "/catalog/[item]" in done.stdout + done.stderr
    assert OUTPUT_ENV not in env
    assert list(workdir.iterdir()) == []


def test_web_ui_serves_its_page(fanout_url: str, tmp_path: Path, port_offset: int) -> None:
    web_port = 8089 + port_offset
    assert not port_in_use(web_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", fanout_url,
         "--web-host", "127.0.0.1", "--web-port", str(web_port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=2) as page:
                    assert page.status == 200
                    assert b"locust" in page.read().lower()
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the web UI never answered"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
