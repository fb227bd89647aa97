"""The worker-pool service's Prometheus series: names, labels and buckets fixed by the contract.

The same names and buckets as the Go service (``go/internal/workerpool``), so that the two compare
bucket by bucket.
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

from systems.answers import WIDE_BUCKETS
from systems.serving import RequestMetrics
from systems.workerpool.kernels import KERNELS

# The statuses /work can answer, bound up front so that every scrape sees them (at 0 before use).
KNOWN_CODES = (200, 400, 405, 503, 504)


class Metrics:
    """All series in one dedicated registry; the label children the hot path needs, bound once.

    ``http`` holds the series every service has (``workerpool_requests_total``,
    ``workerpool_request_duration_seconds``, ``workerpool_in_flight``), counting /work only.
    """

    def __init__(self, workers: int) -> None:
        self.http = RequestMetrics(
            "workerpool",
            buckets=WIDE_BUCKETS,
            known_codes=KNOWN_CODES,
            requests_help="Answers to /work, by HTTP status.",
            duration_help="Time from a /work request's arrival at the handler to its answer.",
            in_flight_help="Tasks admitted and unfinished (running or queued).",
        )
        self.registry = r = self.http.registry
        task = Histogram(
            "workerpool_task_duration_seconds",
            "Kernel run time, measured where the kernel ran (a thread, a process or the loop).",
            ["kernel"],
            buckets=WIDE_BUCKETS,
            registry=r,
        )
        workers_gauge = Gauge("workerpool_workers", "The --workers value.", registry=r)
        workers_gauge.set(workers)
        self.task = {kernel: task.labels(kernel) for kernel in KERNELS}

    def observe_task(self, kernel: str, seconds: float) -> None:
        """One kernel run of ``seconds``, as measured where it ran."""
        self.task[kernel].observe(seconds)
