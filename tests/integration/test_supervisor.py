"""The supervisor owns a process from the moment it is spawned, not once it is ready."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from bench.launch.supervisor import LaunchSpec, Supervisor

pytestmark = pytest.mark.integration


def test_an_interrupt_during_the_readiness_wait_stops_the_process(tmp_path: Path) -> None:
    seen: list[int] = []

    def ready() -> bool:
        # The process exists (its PID is a child of ours); the user presses Ctrl-C now.
        children = psutil.Process().children(recursive=True)
        if not children:
            return False
        seen.extend(c.pid for c in children)
        raise KeyboardInterrupt

    spec = LaunchSpec(
        name="sleeper", command=[sys.executable, "-c", "import time; time.sleep(60)"],
        cwd=tmp_path, cpus=[0], ports=[], ready=ready, ready_timeout_s=10,
        log_path=tmp_path / "sleeper.log",
    )  # fmt: skip
    supervisor = Supervisor()
    with pytest.raises(KeyboardInterrupt), supervisor.running():
        supervisor.start(spec)
    assert seen
    for pid in seen:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
