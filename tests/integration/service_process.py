"""A real service as a child process, and how tests read it: its address, metrics and state.

A process listens on port 0 and is found through its ``listening on ADDR`` lines on stderr. The
``procs`` fixture (in conftest.py) stops every :class:`Proc` a test appends to it.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from bench.launch.supervisor import PARENT_DEATH

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+)")
LABEL = re.compile(r'(\w+)="([^"]*)"')
#: The HTTP timeout of a /metrics read, in seconds.
METRICS_TIMEOUT = 20.0


class Proc:
    """A child process, run from the repository root, whose stderr is drained by a thread.

    Each stderr line goes to a queue (read by :meth:`wait_listening`) and to ``log``.
    ``env`` adds to (or overrides) this process's environment; the child inherits the rest.
    """

    def __init__(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        self.argv = argv
        # As the harness's own processes: SIGTERM when the test run dies, however it dies.
        self.popen = subprocess.Popen(
            [*PARENT_DEATH, *argv],
            cwd=ROOT,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_listening(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """The addresses of the first ``count`` ``listening on ADDR`` lines, in order.

        Fails the test (after stopping the process) if they have not all come within ``timeout``
        seconds.
        """
        addrs: list[str] = []
        end = time.monotonic() + timeout
        while len(addrs) < count:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                self.stop()
                pytest.fail(f"{shlex.join(self.argv)} not ready; stderr: {''.join(self.log)!r}")
            if m := LISTENING.search(line):
                addrs.append(m.group(1))
        return addrs

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited 10 s later; nothing if it has exited."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def metric(addr: str, name: str, /, **labels: str) -> float:
    """One sample from the Prometheus text at ``http://ADDR/metrics`` (0 when absent).

    The labels must match the sample's exactly, in any order: no labels means the unlabelled one.
    """
    want = _canonical(name, labels)
    for line in _get(addr, "/metrics").decode().splitlines():
        if line.startswith("#") or not line.startswith(name) or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        base, _, rest = series.partition("{")
        if _canonical(base, dict(LABEL.findall(rest))) == want:
            return float(value)
    return 0.0


def _canonical(name: str, labels: Mapping[str, str]) -> str:
    """``name{k="v",...}`` with the labels sorted, ``name{}`` with none."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _get(addr: str, path: str) -> bytes:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=METRICS_TIMEOUT)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Whether ``predicate`` holds within ``timeout`` seconds, polled every 20 ms."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
