"""Nothing outlives the harness: kill -9 of it leaves no process and no held port behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.launch.reaper import reap_orphans
from bench.launch.supervisor import port_in_use

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).with_name("orphan_harness.py")
ROOT = Path(__file__).resolve().parents[2]


def _gone(pids: list[int], timeout_s: float) -> list[int]:
    """The PIDs still running (zombies excepted) after up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in pids if _running(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "runtime"
    monkeypatch.setenv("PATTERNBENCH_RUNTIME_DIR", str(folder))
    return folder


def _harness(port: int, tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], list[int]]:
    harness = subprocess.Popen(
        [sys.executable, str(HARNESS), str(port), str(tmp_path), *flags],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert harness.stdout is not None
    line = harness.stdout.readline().split()
    assert line[:1] == ["owned"], f"the harness did not start its server: {line}"
    return harness, [int(p) for p in line[1:]]


def _cleanup(pids: list[int]) -> None:
    for pid in pids:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_harness_stops_its_process_group(
    tmp_path: Path, runtime: Path, port_offset: int
) -> None:
    harness, owned = _harness(port_offset + 8081, tmp_path)
    assert len(owned) == 2, "the server and its child"
    try:
        harness.kill()
        harness.wait(timeout=10)
        assert _gone(owned, timeout_s=15) == []
        deadline = time.monotonic() + 5
        while port_in_use(port_offset + 8081) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_in_use(port_offset + 8081)
        while list(runtime.glob("*.json")) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        assert list(runtime.glob("*.json")) == [], "the watchdog deletes the record it reaped"
    finally:
        _cleanup(owned)


def test_the_next_start_reaps_what_a_dead_harness_and_its_watchdog_left(
    tmp_path: Path, runtime: Path, port_offset: int
) -> None:
    harness, owned = _harness(port_offset + 8081, tmp_path, "--stubborn")
    try:
        watchdogs = [
            c for c in psutil.Process(harness.pid).children()
            if "bench.launch.watchdog" in " ".join(c.cmdline())
        ]  # fmt: skip
        assert len(watchdogs) == 1
        watchdogs[0].kill()
        assert _gone([watchdogs[0].pid], timeout_s=10) == []  # a zombie of the harness now
        harness.kill()
        harness.wait(timeout=10)
        # Both ignore the parent-death SIGTERM and no watchdog is left: they outlive the harness.
        time.sleep(0.5)
        assert all(_running(p) for p in owned)
        reaped = reap_orphans(runtime, grace_s=1.0)
        assert [(pid, [o.name for o in stopped]) for pid, stopped in reaped] == [
            (harness.pid, ["orphan-server"])
        ]
        assert _gone(owned, timeout_s=10) == []
        assert list(runtime.glob("*.json")) == []
    finally:
        _cleanup(owned)


def test_a_live_harness_s_record_is_left_alone(
    tmp_path: Path, runtime: Path, port_offset: int
) -> None:
    harness, owned = _harness(port_offset + 8081, tmp_path)
    try:
        assert reap_orphans(runtime, grace_s=1.0) == []
        assert all(_running(p) for p in owned)
    finally:
        harness.send_signal(signal.SIGTERM)
        harness.wait(timeout=20)
        assert _gone(owned, timeout_s=10) == []
