"""Numbers you can sign: coordinated omission corrected against arithmetic, and a generator
asked for more than it can send is caught.

The stall server stalls for S = 200 ms every T = 2 s. Open-loop at a constant rate, 10% of
requests arrive during a stall and wait uniformly 0-200 ms, so the corrected p99 is about
S·(1 - 0.01·T/S) = 180 ms, p95 about 100 ms, and p90 near the unstalled latency. A closed-loop
generator sends nothing while its users wait, so only one request per user and stall is slow:
its percentiles hide the stall — the omission the correction exists for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.engines.url import LoadRequest, run
from bench.launch.probes import http_ready
from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use
from bench.models import LoadStats
from bench.stats import headroom
from tests.integration.conftest import REPO, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

STALL_MS, EVERY_MS = 200, 2000


def _cpus() -> tuple[list[int], list[int]]:
    cpus = sorted(os.sched_getaffinity(0))
    half = max(1, len(cpus) // 2)
    return cpus[half:] or cpus, cpus[:half]


def _serve(tmp_path: Path, name: str, command: list[str], port: int) -> Iterator[str]:
    system_cpus, _ = _cpus()
    supervisor = Supervisor()
    with supervisor.running():
        supervisor.start(
            LaunchSpec(
                name=name, command=command, cwd=REPO, cpus=system_cpus, ports=[port],
                ready=http_ready("127.0.0.1", port), ready_timeout_s=15,
                log_path=tmp_path / f"{name}.log",
            )
        )  # fmt: skip
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture
def stalling_url(tmp_path: Path, port_offset: int) -> Iterator[str]:
    port = 8095 + port_offset
    script = str(REPO / "tests" / "integration" / "stall_server.py")
    yield from _serve(tmp_path, "stall", [sys.executable, script, str(port), str(STALL_MS),
                                          str(EVERY_MS)], port)  # fmt: skip


@pytest.fixture
def hello_url(tmp_path: Path, port_offset: int) -> Iterator[str]:
    port = 8090 + port_offset
    assert not port_in_use(port)
    yield from _serve(tmp_path, "hello", ["go/bin/hello", "--listen", f"127.0.0.1:{port}"], port)


def load(url: str, tmp_path: Path, engine: str, rate: float | None, **kw: float) -> LoadStats:
    return run(
        LoadRequest(
            url=url, engine=engine, rate=rate, duration_s=kw.get("duration", 10.0),
            warmup_s=kw.get("warmup", 0.5), arrival="constant", users=int(kw.get("users", 4)),
            cpus=_cpus()[1], workdir=tmp_path / f"{engine}-{rate}", root=REPO,
            max_in_flight=int(kw.get("max_in_flight", 1000)),
        ),
        PARTS.engines,
    )  # fmt: skip


@shared_machine
@pytest.mark.parametrize("engine", ["loadgen", "locust"])
def test_open_loop_corrects_coordinated_omission(
    stalling_url: str, tmp_path: Path, engine: str
) -> None:
    stats = load(stalling_url, tmp_path, engine, rate=200.0)
    assert stats.requests == pytest.approx(2000, abs=20)
    assert headroom.invalid_reasons(stats) == []
    corrected = stats.latency_ms
    expected_p99 = STALL_MS * (1 - 0.01 * EVERY_MS / STALL_MS)  # 180 ms
    assert corrected.p99 == pytest.approx(expected_p99, abs=25)
    # p95 is the middle of the stalled 10%: about S/2.
    assert 70 <= decode_p95(stats) <= 130
    assert corrected.p90 < 25
    assert corrected.max == pytest.approx(STALL_MS, abs=30)


def test_closed_loop_hides_the_stall(stalling_url: str, tmp_path: Path) -> None:
    stats = load(stalling_url, tmp_path, "locust", rate=None, users=4)
    assert stats.load_model == "closed-loop"
    assert stats.requests > 5000
    # Each user waits out each stall with one request: 4 of thousands per stall.
    assert stats.latency_ms.p99 < 30
    assert stats.latency_ms.max == pytest.approx(STALL_MS, abs=30)


@pytest.mark.parametrize(("engine", "rate"), [("loadgen", 5_000_000.0), ("locust", 50_000.0)])
def test_a_rate_beyond_the_generator_is_marked_invalid(
    hello_url: str, tmp_path: Path, engine: str, rate: float
) -> None:
    # A cap the generator never reaches, so that what limits it is the generator itself
    # (at a full cap, a slow system would be the limit).
    stats = load(hello_url, tmp_path, engine, rate=rate, duration=2.0, max_in_flight=20_000)
    reasons = headroom.invalid_reasons(stats)
    assert reasons, stats
    generator_words = ("sent", "late", "saturated", "fell behind")
    assert any(word in r for r in reasons for word in generator_words), reasons


def decode_p95(stats: LoadStats) -> float:
    from bench.stats.percentiles import decode, value_ms

    return value_ms(decode(stats.histogram), 95.0)
