"""What is measured beside the load: process CPU and memory, and the system's own /metrics.

`TreeSampler` follows a process and all its descendants (a process pool's memory is the sum of
its processes). `scrape` reads a Prometheus endpoint; `metric_deltas` turns two scrapes into what
happened in between (counters and histograms as differences, gauges as their last value).
"""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import threading
import time
import urllib.request

import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.launcher import RunningProcess
from bench.results import ProcessStats

#: Runtime metrics every client library adds; they describe the exporter, not the pattern.
_RUNTIME_PREFIXES = ("go_", "python_", "process_", "promhttp_")


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


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse_metrics(text: str) -> tuple[dict[str, float], set[str]]:
    """Samples by `name{labels}`, and the keys that are gauges (the rest accumulate)."""
    values: dict[str, float] = {}
    gauges: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.name.startswith(_RUNTIME_PREFIXES):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = _key(sample.name, sample.labels)
            values[key] = float(sample.value)
            if family.type in ("gauge", "unknown", "info", "stateset"):
                gauges.add(key)
    return values, gauges


def scrape(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def metric_deltas(before: str, after: str) -> dict[str, float]:
    """What the system counted between two scrapes of its /metrics."""
    old, _ = parse_metrics(before)
    new, gauges = parse_metrics(after)
    return {
        key: value if key in gauges else value - old.get(key, 0.0)
        for key, value in sorted(new.items())
    }


_LE = re.compile(r'le="([^"]+)"')


def histogram_quantile_bounds(
    metrics: dict[str, float], name: str, q: float
) -> tuple[float, float] | None:
    """The bucket bounds (seconds) that quantile q (0..1) of a Prometheus histogram lies in.

    A bucketed histogram knows no more than that: interpolating inside a bucket, as Prometheus's
    histogram_quantile() does, invents a figure (a p99 of 108 ms reads as 212 ms in a
    100 to 250 ms bucket). None when the histogram is empty or absent; the upper bound is inf when
    the quantile lies beyond the last finite bucket.
    """
    buckets: list[tuple[float, float]] = []
    for key, count in metrics.items():
        if key.startswith(f"{name}_bucket{{"):
            match = _LE.search(key)
            if match:
                buckets.append((float(match.group(1)), count))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower, bound
        lower = bound
    return lower, math.inf


class SystemGone(Exception):
    """The system stopped answering during the measured window."""

    def __init__(self, message: str, stderr_tail: str) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class SystemWindow:
    """The system's side of the measured window: its /metrics and its process tree's CPU/RSS.

    An overloaded system may not answer /metrics in time: then the trial has no server-side
    figures (`metrics_error` says why) but stands. Only a system that died fails it.
    """

    #: Short, so that a slow scrape cannot move the window it measures.
    SCRAPE_TIMEOUT_S = 1.0

    def __init__(self, proc: RunningProcess, metrics_url: str) -> None:
        self._proc = proc
        self._metrics_url = metrics_url
        self._sampler: TreeSampler | None = None
        self._before: str | None = None
        self.metrics: dict[str, float] = {}
        self.metrics_error: str | None = None
        self.process: ProcessStats | None = None

    def _scrape(self, when: str) -> str | None:
        try:
            return scrape(self._metrics_url, timeout_s=self.SCRAPE_TIMEOUT_S)
        except OSError as e:
            gone = self._exit_code()
            if gone is not None:
                raise SystemGone(
                    f"exited with status {gone} during the run", self._proc.stderr_tail()
                ) from None
            self.metrics_error = f"/metrics did not answer when the window {when}: {e}"
            return None

    def open(self) -> None:
        self._before = self._scrape("opened")
        try:
            self._sampler = TreeSampler(self._proc.pid)
        except psutil.NoSuchProcess:
            raise SystemGone(
                f"exited with status {self._exit_code()} during the run", self._proc.stderr_tail()
            ) from None
        self._sampler.start()

    def close(self) -> None:
        assert self._sampler is not None, "close() before open()"
        self.process = self._sampler.stop()
        after = self._scrape("closed")
        if self._before is not None and after is not None:
            self.metrics = metric_deltas(self._before, after)

    def _exit_code(self) -> int | None:
        """A dead process explains a silent /metrics best; give it a moment to be reaped."""
        try:
            return self._proc.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
