"""The inference servers' Prometheus series, in a registry of their own.

Per request on the infer path (every answer, whatever its status):

- ``inference_requests_total{code}``: answers by HTTP status (200, 400, 404, 405, 413, 500 and
  503 bound up front, so they read 0 before first use);
- ``inference_request_duration_seconds``: from the handler's start (before the body is read) to
  the answer built (``WIDE_BUCKETS``);
- ``inference_in_flight``: requests in the handler, read at scrape time.

Per request that reached the batcher, its duration part by part (they add up to it, but for
making the response object and counting it):

- ``inference_queue_seconds``: arrival to being taken into a batch (reading and decoding the
  body, then waiting in the queue);
- ``inference_batch_formation_seconds``: taken to its batch handed to the forward thread;
- ``inference_compute_seconds``: handed over to its result back with its handler on the event
  loop (hand-off, forward pass, split, and the turn of the batch's requests resumed before it);
- ``inference_answer_seconds``: its result back to its answer encoded (JSON or protobuf), for
  requests answered 200.

Per forward pass: ``inference_forward_seconds``, the model's own time (CUDA events on a GPU),
and ``inference_batch_size``, its samples (padding excluded): the histogram's ``_sum`` is the
samples computed, its ``_count`` the passes.

And ``inference_queue_depth`` (requests waiting for a batch, read at scrape time), and
``inference_device_info{device,torch,cuda,model,policy,threads,mode}`` = 1: what served, which
the harness keeps in its result with the other gauges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import Gauge, Histogram

from systems.answers import WIDE_BUCKETS, RequestMetrics

PREFIX: Final = "inference"
#: The statuses an answer of the infer path may have, bound up front.
KNOWN_CODES: Final = (200, 400, 404, 405, 413, 500, 503)
#: 10 µs to 10 s: a forward pass of a small batch on a GPU takes tens of µs.
PART_BUCKETS: Final = (0.00001, 0.000025, 0.00005, *WIDE_BUCKETS)
#: Samples in a forward pass.
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every series above; ``http`` counts answers, the rest is observed by the methods."""

    def __init__(
        self,
        *,
        in_flight: Callable[[], float],
        queue_depth: Callable[[], float],
        info: dict[str, str],
    ) -> None:
        self.http = RequestMetrics(
            PREFIX,
            buckets=WIDE_BUCKETS,
            known_codes=KNOWN_CODES,
            requests_help="Answers of the infer path, by HTTP status.",
            duration_help="Time from a request's arrival at the handler to its answer built.",
            in_flight_help="Requests of the infer path in the handler.",
        )
        self.http.watch_in_flight(in_flight)
        self.registry = r = self.http.registry
        self._queue = Histogram(
            f"{PREFIX}_queue_seconds",
            "Time from a request's arrival to its being taken into a batch (reading, decoding, "
            "waiting in the queue).",
            buckets=PART_BUCKETS,
            registry=r,
        )
        self._formation = Histogram(
            f"{PREFIX}_batch_formation_seconds",
            "Time from a request's being taken into a batch to the batch's hand-off to the "
            "forward thread.",
            buckets=PART_BUCKETS,
            registry=r,
        )
        self._compute = Histogram(
            f"{PREFIX}_compute_seconds",
            "Time from a request's batch hand-off to its result back with its handler on the "
            "event loop (hand-off, forward pass, split, the batch's requests resumed before it).",
            buckets=PART_BUCKETS,
            registry=r,
        )
        self._answer = Histogram(
            f"{PREFIX}_answer_seconds",
            "Time from a request's result back with its handler to its answer encoded.",
            buckets=PART_BUCKETS,
            registry=r,
        )
        self._forward = Histogram(
            f"{PREFIX}_forward_seconds",
            "The model's own time of a forward pass (CUDA events on a GPU, no copies).",
            buckets=PART_BUCKETS,
            registry=r,
        )
        self._batch = Histogram(
            f"{PREFIX}_batch_size",
            "Samples in a forward pass, padding excluded (_sum: samples computed, _count: passes).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        depth = Gauge(
            f"{PREFIX}_queue_depth", "Requests waiting to be taken into a batch.", registry=r
        )
        depth.set_function(queue_depth)
        labels = sorted(info)
        device = Gauge(
            f"{PREFIX}_device_info",
            "What serves: device, torch and CUDA versions, model, policy, threads, mode (1).",
            labels,
            registry=r,
        )
        device.labels(*(info[k] for k in labels)).set(1)

    def observe_parts(
        self, queue: float, formation: float, compute: float, answer: float | None = None
    ) -> None:
        """One request's time, part by part (``batcher.Pending.parts``, then the encoding of its
        answer when it got one)."""
        self._queue.observe(queue)
        self._formation.observe(formation)
        self._compute.observe(compute)
        if answer is not None:
            self._answer.observe(answer)

    def observe_pass(self, samples: int, seconds: float) -> None:
        """One forward pass: its samples and the model's own seconds."""
        self._batch.observe(samples)
        self._forward.observe(seconds)
