"""The hook a locustfile installs so the harness gets every request's latency in HDR histograms.

Locust's own statistics round response times into coarse buckets; a harness needs exact tails.
`install()` adds listeners to Locust's events that record each request into HdrHistograms
(microseconds), drop what falls outside the measured window, and at the end of the test write a
small JSON file the harness reads. Without the harness's environment variables it does nothing,
so the same locustfile runs on its own with Locust's web UI.

Two load models:

- closed-loop: the locustfile's own User classes; latency is measured from the actual send.
- open-loop: `open_loop_user(Base, send, name=...)` makes a User that calls
  `send(user, context)` at a target arrival rate whatever the answers, each request carrying
  its *intended* send time.
  Latency is then measured from the intended time (coordinated omission corrected), and the
  uncorrected latency (from the actual send) and the schedule slip are kept beside it, as wrk2
  does.

This module is the only part of the harness that a locustfile may import.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from bench.stats.percentiles import encode, new_histogram
from bench.store import write_atomic

#: Where to write the recording; set by the harness.
OUTPUT_ENV = "PATTERNBENCH_RECORD"
#: Seconds from the test's start during which requests are not recorded.
WARMUP_ENV = "PATTERNBENCH_WARMUP_S"
#: Seconds of the measured window after the warm-up; requests sent later are not recorded.
DURATION_ENV = "PATTERNBENCH_DURATION_S"
#: Open-loop: target arrival rate (requests/s), arrival process, seed, concurrency cap.
RATE_ENV = "PATTERNBENCH_RATE"
ARRIVAL_ENV = "PATTERNBENCH_ARRIVAL"
SEED_ENV = "PATTERNBENCH_SEED"
MAX_IN_FLIGHT_ENV = "PATTERNBENCH_MAX_IN_FLIGHT"

#: The request's context key holding its intended send time (wall clock, seconds).
INTENDED = "patternbench_intended"


class Recording(TypedDict):
    """The JSON file written at the end of a test."""

    histogram: str
    uncorrected_histogram: str | None
    slip_histogram: str | None
    requests: int
    sent_in_window: int
    errors: int
    error_kinds: dict[str, int]
    window_start: float
    window_end: float
    in_flight_cap_hit: bool


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
        self.uncorrected = new_histogram()
        self.slip = new_histogram()
        self.open_loop = False
        self.errors: Counter[str] = Counter()
        self.requests = 0
        self.sent_in_window = 0
        self.in_flight_cap_hit = False
        self.window_start = 0.0
        self.window_end = float("inf")

    def _in_window(self, t: float) -> bool:
        return self.window_start != 0.0 and self.window_start <= t < self.window_end

    def on_test_start(self, **_: Any) -> None:
        self.window_start = self.clock() + self.warmup_s
        self.window_end = self.window_start + self.duration_s
        # Tell the harness when the measured window opens, so that what it measures beside the
        # load (server metrics, process CPU) covers the same seconds.
        write_atomic(window_path(self.output), json.dumps({"window_start": self.window_start}))

    def on_request(
        self,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        end = self.clock()
        sent = end - response_time / 1000.0
        intended = (context or {}).get(INTENDED)
        if intended is None:
            if not self._in_window(sent):
                return
            self.hist.record_value(_us(response_time / 1000.0))
        else:
            self.open_loop = True
            if self._in_window(sent):
                self.sent_in_window += 1
            if not self._in_window(intended):
                return
            self.hist.record_value(_us(end - intended))
            self.uncorrected.record_value(_us(response_time / 1000.0))
            self.slip.record_value(_us(sent - intended))
        self.requests += 1
        if exception is not None:
            self.errors[_error_kind(exception)] += 1

    def on_test_stop(self, **_: Any) -> None:
        recording: Recording = {
            "histogram": encode(self.hist),
            "uncorrected_histogram": encode(self.uncorrected) if self.open_loop else None,
            "slip_histogram": encode(self.slip) if self.open_loop else None,
            "requests": self.requests,
            "sent_in_window": self.sent_in_window if self.open_loop else self.requests,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "window_start": self.window_start,
            "window_end": min(self.window_end, self.clock()),
            "in_flight_cap_hit": self.in_flight_cap_hit,
        }
        write_atomic(self.output, json.dumps(recording) + "\n")


_recorder: _Recorder | None = None


def _us(seconds: float) -> int:
    return max(1, round(seconds * 1_000_000))


def window_path(output: Path) -> Path:
    """Where the hook announces the measured window's start, beside its recording."""
    return output.with_name(output.name + ".window")


def _error_kind(exception: BaseException) -> str:
    # A locustfile's own exception may name its kind as loadgen does ("grpc Unavailable").
    own = getattr(exception, "error_kind", None)
    if isinstance(own, str) and own:
        return own
    text = str(exception)
    # Locust's CatchResponseError messages carry the status first ("503 ...", "HTTP 503").
    for token in text.replace(":", " ").split():
        if token.isdigit() and len(token) == 3:
            return f"HTTP {token}"
    return type(exception).__name__


def install() -> None:
    """Record into HDR histograms when run by the harness; do nothing otherwise."""
    global _recorder
    output = os.environ.get(OUTPUT_ENV)
    if not output:
        return
    from locust import events

    _recorder = _Recorder(
        Path(output),
        warmup_s=float(os.environ.get(WARMUP_ENV, "0")),
        duration_s=float(os.environ.get(DURATION_ENV, "inf")),
    )
    events.test_start.add_listener(_recorder.on_test_start)  # type: ignore[no-untyped-call]
    events.request.add_listener(_recorder.on_request)  # type: ignore[no-untyped-call]
    events.test_stop.add_listener(_recorder.on_test_stop)  # type: ignore[no-untyped-call]


Send = Callable[[Any, dict[str, Any]], None]


def arrivals(rate: float, arrival: str, seed: int, start: float) -> Callable[[], float]:
    """Intended send times: every 1/rate s (constant), or exponential gaps (poisson)."""
    if rate <= 0:
        raise ValueError(f"open-loop rate must be positive, got {rate}")
    rng = random.Random(seed)
    state = {"next": start, "n": 0}

    def constant() -> float:
        state["n"] += 1
        return start + (state["n"] - 1) / rate

    def poisson() -> float:
        t = state["next"]
        state["next"] = t + rng.expovariate(rate)
        return t

    if arrival == "constant":
        return constant
    if arrival == "poisson":
        return poisson
    raise ValueError(f"arrival must be constant or poisson, got {arrival!r}")


def open_loop_user(base: type[Any], send: Send, *, name: str) -> type[Any]:
    """A User class that drives `send(user, context)` open-loop at the harness's target rate.

    `send` makes one request with `context=context` (that is how the intended send time reaches
    the recorder).

    Run it as the only user (`-u 1`): its task schedules every request at its intended time on
    its own greenlet, at most PATTERNBENCH_MAX_IN_FLIGHT at once (when the cap is reached, the
    next request waits, its slip grows, and its corrected latency includes the wait).
    """
    import gevent
    import gevent.pool
    from locust import task

    max_in_flight = int(os.environ.get(MAX_IN_FLIGHT_ENV, "1000"))

    class OpenLoopUser(base):  # type: ignore[misc]
        # Abstract (never run) unless the harness asked for open-loop load: a locustfile run on
        # its own with the web UI then offers only its closed-loop users.
        abstract = not os.environ.get(RATE_ENV)
        concurrency = max_in_flight

        @task
        def schedule(self) -> None:
            rate = float(os.environ.get(RATE_ENV, "0") or 0)
            if rate <= 0:
                raise RuntimeError(f"{RATE_ENV} must be set to a positive rate for open-loop load")
            next_time = arrivals(
                rate,
                os.environ.get(ARRIVAL_ENV, "constant"),
                int(os.environ.get(SEED_ENV, "1")),
                time.time(),
            )
            pool = gevent.pool.Pool(max_in_flight)
            while True:
                intended = next_time()
                delay = intended - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                if pool.full() and _recorder is not None:
                    _recorder.in_flight_cap_hit = True
                pool.spawn(send, self, {INTENDED: intended})

    # Locust selects user classes by name: give it the name the locustfile binds it to.
    OpenLoopUser.__name__ = OpenLoopUser.__qualname__ = name
    return OpenLoopUser
