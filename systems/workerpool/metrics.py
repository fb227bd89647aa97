"""The worker-pool service's Prometheus series: names, labels and buckets fixed by the contract.

The same names and buckets as the Go service (``go/internal/workerpool``), so that the two compare
bucket by bucket.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from systems.workerpool.kernels import KERNELS

DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
# The statuses /work can answer, bound up front so that every scrape sees them (at 0 before use).
KNOWN_CODES = (200, 400, 405, 503, 504)

# The contract names exactly these series; *_created companions would be noise next to Go's.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """All series in one dedicated registry; the label children the hot path needs, bound once."""

    def __init__(self, workers: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "workerpool_requests", "Answers to /work, by HTTP status.", ["code"], registry=r
        )
        self.duration = Histogram(
            "workerpool_request_duration_seconds",
            "Time from a /work request's arrival at the handler to its answer.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        task = Histogram(
            "workerpool_task_duration_seconds",
            "Kernel run time, measured where the kernel ran (a thread, a process or the loop).",
            ["kernel"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._in_flight = Gauge(
            "workerpool_in_flight", "Tasks admitted and unfinished (running or queued).", registry=r
        )
        workers_gauge = Gauge("workerpool_workers", "The --workers value.", registry=r)
        workers_gauge.set(workers)
        self.requests = {code: self._requests.labels(str(code)) for code in KNOWN_CODES}
        self.task = {kernel: task.labels(kernel) for kernel in KERNELS}

    def watch_in_flight(self, read: Callable[[], float]) -> None:
        """Have ``workerpool_in_flight`` read the count at scrape time (nothing on the hot path)."""
        self._in_flight.set_function(read)

    def count_request(self, code: int, seconds: float) -> None:
        """Count one /work answer with status ``code`` that took ``seconds``."""
        child = self.requests.get(code)
        if child is None:
            child = self.requests[code] = self._requests.labels(str(code))
        child.inc()
        self.duration.observe(seconds)

    def observe_task(self, kernel: str, seconds: float) -> None:
        """One kernel run of ``seconds``, as measured where it ran."""
        self.task[kernel].observe(seconds)
