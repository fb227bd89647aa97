"""Was the load generator the limit? The one place that decides whether a trial is valid.

A number is the system's only if the generator delivered the load it was asked for. A trial is
invalid — kept in the result, shown in the report, refused by every comparison — when:

- the generator's CPU reached SATURATED_SHARE of the cores it was given;
- open-loop, it sent less than MIN_ACHIEVED_SHARE of the target rate (with Poisson arrivals, less
  than the count's own randomness allows: POISSON_SIGMAS standard deviations below the expected
  count, when that is wider), or requests left more
  than MAX_SLIP_P99_MS late at the 99th percentile — unless its concurrency cap was reached,
  which means the *system* stopped answering (then the corrected latency shows it, as it must);
- nothing was measured (open-loop: the generator never reached the window in its schedule), or,
  below its concurrency cap, the generator gave up on requests it never sent.

Why the cap changes the verdict: by Little's law a full cap of C requests at rate R means the
system took longer than C/R to answer (1000 at 4,000 req/s: over 250 ms). The requests that
could not be sent are then the overloaded system's, and count as its errors.

Whose errors (``split_errors``): an error the system answered with a status (a 503 refusal) is
the system's answer; one the generator counted because no answer came (never sent at its
in-flight cap, timed out, connection refused) is the generator's count. Both count against the
system in a valid trial; the split says how it failed: a system that sheds load shows the first,
a system that queues until its clients give up shows the second, and the report says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bench.models import LoadStats

SATURATED_SHARE = 0.90
MIN_ACHIEVED_SHARE = 0.95
MAX_SLIP_P99_MS = 5.0
#: Poisson arrivals in a window of N expected are N ± √N: a shortfall within this many standard
#: deviations is chance (4 of them: about 3 in 100,000 trials), not a generator that fell behind.
POISSON_SIGMAS = 4.0
#: loadgen's error kind for requests still not sent a second after the window: it gave up on them.
UNSENT = "unsent"


def min_achieved_share(load: LoadStats, poisson: bool) -> float:
    """The share of the target rate a trial must reach to count as delivered."""
    share = MIN_ACHIEVED_SHARE
    expected = (load.target_rps or 0.0) * load.duration_s
    if poisson and expected > 0:
        share = min(share, 1.0 - POISSON_SIGMAS / math.sqrt(expected))
    return max(share, 0.0)


def invalid_reasons(load: LoadStats, *, poisson: bool = False) -> list[str]:
    """Why the generator, not the system, limited this trial; empty when it did not.

    `poisson`: the arrivals were Poisson, so the number sent in the window is itself random.
    """
    reasons: list[str] = []
    if load.requests == 0:
        # Open-loop, every request of the window is recorded, answered or not: none means the
        # generator never reached the window's part of its schedule.
        reasons.append(
            "the load generator fell behind its schedule: no request was sent for the window"
            if load.load_model == "open-loop"
            else "no request was measured"
        )
    unsent = load.error_kinds.get(UNSENT, 0)
    if unsent and not load.in_flight_cap_hit:
        reasons.append(
            f"the load generator fell behind its schedule: {unsent:,} requests of the window "
            "were never sent"
        )
    limit = 100.0 * load.generator_cpus * SATURATED_SHARE
    if load.generator_cpu_percent >= limit:
        reasons.append(
            f"the load generator used {load.generator_cpu_percent:.0f}% CPU on "
            f"{load.generator_cpus} core(s): saturated"
        )
    if load.load_model == "open-loop" and load.target_rps and not load.in_flight_cap_hit:
        if load.achieved_rps < min_achieved_share(load, poisson) * load.target_rps:
            reasons.append(
                f"the load generator sent {load.achieved_rps:,.0f} of the "
                f"{load.target_rps:,.0f} req/s asked for"
            )
        if load.slip_ms is not None and load.slip_ms.p99 > MAX_SLIP_P99_MS:
            reasons.append(
                f"requests left late: schedule slip p99 {load.slip_ms.p99:.1f} ms "
                f"(limit {MAX_SLIP_P99_MS:g} ms)"
            )
    return reasons


# --- whose errors: the system's answers or the generator's ----------------------------------------

#: Error kinds that name a status the system answered with: its own refusals and failures.
#: Every other kind (loadgen's "unsent", "timeout" and "connection", Locust's exception names) is a
#: request the system never answered, counted by the generator.
SYSTEM_KIND_PREFIXES = ("HTTP ", "grpc ")
#: What each of the generator's own error kinds means, said in a report.
GENERATOR_KINDS = {
    "timeout": "no answer within the generator's timeout",
    "connection": "connection refused, reset or closed without an answer",
}


@dataclass(frozen=True)
class ErrorSplit:
    """A window's errors by who produced them: ``system`` answered each with a status (a 503
    refusal, a 500), ``generator`` counted each because no answer came (never sent, timed out,
    connection failed). Each maps an error kind to its count."""

    system: dict[str, int]
    generator: dict[str, int]

    @property
    def system_total(self) -> int:
        return sum(self.system.values())

    @property
    def generator_total(self) -> int:
        return sum(self.generator.values())

    @property
    def total(self) -> int:
        return self.system_total + self.generator_total


def answered_by_system(kind: str) -> bool:
    return kind.startswith(SYSTEM_KIND_PREFIXES)


def split_errors(*error_kinds: Mapping[str, int]) -> ErrorSplit:
    """The errors of one or more windows (their ``error_kinds``, summed), by who produced them."""
    system: dict[str, int] = {}
    generator: dict[str, int] = {}
    for kinds in error_kinds:
        for kind, count in kinds.items():
            side = system if answered_by_system(kind) else generator
            side[kind] = side.get(kind, 0) + count
    return ErrorSplit(system=system, generator=generator)


def describe_generator_kind(kind: str, cap_hit: bool) -> str:
    """One of the generator's error kinds in words, for a report; ``cap_hit``: the generator's
    in-flight cap was reached in the window."""
    if kind == UNSENT:
        if cap_hit:
            return "never sent: the generator's in-flight cap was full"
        return "never sent: the generator fell behind its schedule"
    return GENERATOR_KINDS.get(kind, f"{kind} (no answer)")
