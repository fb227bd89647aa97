"""The hook a locustfile installs so the harness gets every request's latency in an HDR histogram.

Locust's own statistics round response times into coarse buckets; a harness needs exact tails.
`install()` adds listeners to Locust's events that record each request into an HdrHistogram
(microseconds), drop what starts inside the warm-up, and at the end of the test write a small
JSON file the harness reads. Without the harness's environment variables it does nothing, so the
same locustfile runs on its own with Locust's web UI.

This module is the only part of the harness that a locustfile may import.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from bench.results import write_atomic
from bench.stats import encode, new_histogram

#: Where to write the recording; set by the harness.
OUTPUT_ENV = "PATTERNBENCH_RECORD"
#: Seconds from the test's start during which requests are not recorded.
WARMUP_ENV = "PATTERNBENCH_WARMUP_S"
#: Seconds of the measured window after the warm-up; requests sent later are not recorded.
DURATION_ENV = "PATTERNBENCH_DURATION_S"


class Recording(TypedDict):
    """The JSON file written at the end of a test."""

    histogram: str
    requests: int
    errors: int
    error_kinds: dict[str, int]
    window_start: float
    window_end: float


class _Recorder:
    def __init__(
        self,
        output: Path,
        warmup_s: float,
        duration_s: float = float("inf"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.output = output
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.clock = clock
        self.hist = new_histogram()
        self.errors: Counter[str] = Counter()
        self.requests = 0
        self.window_start = 0.0
        self.window_end = float("inf")

    def on_test_start(self, **_: Any) -> None:
        self.window_start = self.clock() + self.warmup_s
        self.window_end = self.window_start + self.duration_s
        # Tell the harness when the measured window opens, so that what it measures beside the
        # load (server metrics, process CPU) covers the same seconds.
        write_atomic(window_path(self.output), json.dumps({"window_start": self.window_start}))

    def on_request(
        self, response_time: float, exception: BaseException | None = None, **_: Any
    ) -> None:
        sent = self.clock() - response_time / 1000.0
        if self.window_start == 0.0 or not self.window_start <= sent < self.window_end:
            return
        self.requests += 1
        self.hist.record_value(max(1, round(response_time * 1000.0)))
        if exception is not None:
            self.errors[_error_kind(exception)] += 1

    def on_test_stop(self, **_: Any) -> None:
        recording: Recording = {
            "histogram": encode(self.hist),
            "requests": self.requests,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "window_start": self.window_start,
            "window_end": min(self.window_end, self.clock()),
        }
        write_atomic(self.output, json.dumps(recording) + "\n")


def window_path(output: Path) -> Path:
    """Where the hook announces the measured window's start, beside its recording."""
    return output.with_name(output.name + ".window")


def _error_kind(exception: BaseException) -> str:
    text = str(exception)
    # Locust's CatchResponseError messages carry the status first ("503 ...", "HTTP 503").
    for token in text.replace(":", " ").split():
        if token.isdigit() and len(token) == 3:
            return f"HTTP {token}"
    return type(exception).__name__


def install() -> None:
    """Record into an HDR histogram when run by the harness; do nothing otherwise."""
    output = os.environ.get(OUTPUT_ENV)
    if not output:
        return
    from locust import events

    recorder = _Recorder(
        Path(output),
        warmup_s=float(os.environ.get(WARMUP_ENV, "0")),
        duration_s=float(os.environ.get(DURATION_ENV, "inf")),
    )
    events.test_start.add_listener(recorder.on_test_start)  # type: ignore[no-untyped-call]
    events.request.add_listener(recorder.on_request)  # type: ignore[no-untyped-call]
    events.test_stop.add_listener(recorder.on_test_stop)  # type: ignore[no-untyped-call]
