"""CPU time and memory of a process tree, sampled in the background.

A process pool's memory is the sum of its processes, so `TreeSampler` follows a process and all
its descendants, and `tree_rss` reads that sum once.
"""

from __future__ import annotations

import contextlib
import threading
import time

import psutil

from bench.models import ProcessStats


def tree_rss(pid: int) -> int | None:
    """The summed RSS of a process and its descendants now; None when the process is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    rss = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            rss += proc.memory_info().rss
    return rss


class TreeSampler:
    """Samples CPU time and RSS of a process tree in a background thread."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self._root = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cpu: dict[int, float] = {}
        self._peak_rss = 0
        self._thread = threading.Thread(target=self._loop, name=f"sampler-{pid}", daemon=True)
        self._started_at = 0.0
        self._cpu_at_start = 0.0

    def _sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs = [self._root, *self._root.children(recursive=True)]
            rss = 0
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss += proc.memory_info().rss
                    with self._lock:
                        self._cpu[proc.pid] = times.user + times.system
            with self._lock:
                self._peak_rss = max(self._peak_rss, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _cpu_total(self) -> float:
        with self._lock:
            return sum(self._cpu.values())

    def start(self) -> None:
        self._sample()
        self._started_at = time.monotonic()
        self._cpu_at_start = self._cpu_total()
        self._thread.start()

    def stop(self) -> ProcessStats:
        self._stop.set()
        self._thread.join()
        self._sample()
        elapsed = max(time.monotonic() - self._started_at, 1e-9)
        cpu = self._cpu_total() - self._cpu_at_start
        return ProcessStats(
            cpu_seconds=round(cpu, 3),
            cpu_percent=round(100.0 * cpu / elapsed, 1),
            peak_rss_bytes=self._peak_rss,
        )
