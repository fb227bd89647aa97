"""The service-level objective, and the search for the highest rate that still meets it.

"How fast is it?" has no answer without a bound on latency: any system takes more load if it
may answer later. So capacity here is the highest offered rate whose tail latency and error
rate stay within the SLO. Measuring is injected (`measure(rate) -> Point`), like trio's
injectable clock, so the search is tested against synthetic systems without running any.

A point whose load generator could not keep up says nothing about the system: it neither passes
nor fails, and the search stops there rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_AT_MOST = r"\s*(?:<=|≤)\s*"
_LATENCY = re.compile(rf"p{_NUMBER}{_AT_MOST}{_NUMBER}\s*(ms|s)", re.IGNORECASE)
_ERRORS = re.compile(rf"errors{_AT_MOST}{_NUMBER}\s*%", re.IGNORECASE)


@dataclass(frozen=True)
class Slo:
    """A latency bound at one percentile and a bound on the share of failed requests."""

    p99_ms: float = 50.0
    """The latency bound in milliseconds, applied at `percentile` (named for the usual p99)."""
    max_error_rate: float = 0.001
    """The highest acceptable fraction of failed requests: 0.001 is 0.1%."""
    percentile: float = 99.0
    """Which latency percentile the bound applies to: 99.9 for p99.9."""

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile < 100.0:
            raise ValueError(f"percentile must be between 0 and 100, got {self.percentile}")
        if not self.p99_ms > 0.0:
            raise ValueError(f"latency bound must be positive, got {self.p99_ms} ms")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ValueError(f"error rate bound must be within 0..1, got {self.max_error_rate}")

    def describe(self) -> str:
        return (
            f"p{self.percentile:g} ≤ {self.p99_ms:g} ms and errors ≤ {self.max_error_rate * 100:g}%"
        )

    @classmethod
    def parse(cls, text: str) -> Slo:
        """Read "p99<=50ms,errors<=0.1%"; either clause may be left out to keep its default."""
        fields: dict[str, float] = {}
        clauses = [clause.strip() for clause in text.split(",")]
        if not any(clauses):
            raise ValueError("empty SLO: expected e.g. 'p99<=50ms,errors<=0.1%'")
        for clause in clauses:
            fields.update(_parse_clause(clause, already=fields))
        return cls(**fields)


def _parse_clause(clause: str, *, already: dict[str, float]) -> dict[str, float]:
    if latency := _LATENCY.fullmatch(clause):
        if "p99_ms" in already:
            raise ValueError(f"SLO clause {clause!r}: the latency bound is given twice")
        scale = 1000.0 if latency[3].lower() == "s" else 1.0
        return {"percentile": float(latency[1]), "p99_ms": float(latency[2]) * scale}
    if errors := _ERRORS.fullmatch(clause):
        if "max_error_rate" in already:
            raise ValueError(f"SLO clause {clause!r}: the error bound is given twice")
        return {"max_error_rate": float(errors[1]) / 100.0}
    raise ValueError(
        f"SLO clause {clause!r} is neither a latency bound like 'p99<=50ms' "
        "nor an error bound like 'errors<=0.1%'"
    )


@dataclass(frozen=True)
class Point:
    """One measurement at one offered rate."""

    rate: float
    """The offered rate, in requests per second."""
    latency_ms: float
    """Latency at the SLO's percentile, corrected for coordinated omission."""
    error_rate: float
    """Fraction of requests that failed."""
    valid: bool
    """False when the load generator, not the system, was the limit: then nothing is known."""


def meets(point: Point, slo: Slo) -> bool:
    """Whether a valid point is within the SLO; a value exactly at a bound passes."""
    if not point.valid:
        raise ValueError(f"the point at rate {point.rate:g} was limited by the load generator")
    return point.latency_ms <= slo.p99_ms and point.error_rate <= slo.max_error_rate


@dataclass(frozen=True)
class SearchResult:
    best_rate: float | None
    """The highest measured rate that met the SLO; None when even the first rate failed."""
    first_failing_rate: float | None
    """The lowest measured rate that failed the SLO (the top of the bracket); None if none did."""
    points: list[Point]
    """Every measurement, in the order taken."""
    limited_by_generator: bool
    """True when the search stopped at a point the load generator could not drive."""
    reason: str
    """One sentence: why the search stopped."""


def find_max_rate(
    measure: Callable[[float], Point],
    slo: Slo,
    *,
    start: float,
    max_rate: float,
    growth: float = 2.0,
    precision: float = 0.05,
    max_steps: int = 12,
) -> SearchResult:
    """The highest rate meeting the SLO, to within `precision`, in at most `max_steps` measurements.

    The rate grows from `start` by `growth` until a point fails or `max_rate` is reached, then
    the gap between the last passing and the first failing rate is halved until it is at most
    `precision` of the passing rate. Bisection assumes latency grows with load; a system that
    does not gets a passing rate, not necessarily the highest one. No rate is measured twice.
    """
    _check_search(
        start=start, max_rate=max_rate, growth=growth, precision=precision, steps=max_steps
    )
    points: list[Point] = []
    passing: float | None = None
    failing: float | None = None

    def stop(reason: str, *, limited_by_generator: bool = False) -> SearchResult:
        return SearchResult(passing, failing, points, limited_by_generator, reason)

    rate = start
    while True:
        if len(points) >= max_steps:
            return stop(f"the budget of {max_steps} measurements ran out.")
        point = measure(rate)
        points.append(point)
        if not point.valid:
            return stop(
                f"the load generator could not drive rate {rate:g}, "
                "so that point neither meets nor fails the SLO.",
                limited_by_generator=True,
            )
        if meets(point, slo):
            passing = rate
        else:
            failing = rate
        if failing is None:  # still growing
            if rate >= max_rate:
                return stop(f"the highest allowed rate, {max_rate:g}, still meets the SLO.")
            rate = min(rate * growth, max_rate)
            continue
        if passing is None:
            return stop(f"the first rate, {start:g}, already fails the SLO.")
        if (failing - passing) / passing <= precision:
            return stop(
                f"the highest rate meeting the SLO lies between {passing:g} and {failing:g}, "
                f"within {precision:.0%}."
            )
        rate = (passing + failing) / 2.0
        if not passing < rate < failing:
            return stop("the bracket is as narrow as floating point allows.")


def _check_search(
    *, start: float, max_rate: float, growth: float, precision: float, steps: int
) -> None:
    if not start > 0.0:
        raise ValueError(f"start must be positive, got {start}")
    if not max_rate >= start:
        raise ValueError(f"max_rate ({max_rate}) must be at least start ({start})")
    if not growth > 1.0:
        raise ValueError(f"growth must be greater than 1, got {growth}")
    if not 0.0 < precision < 1.0:
        raise ValueError(f"precision must be between 0 and 1, got {precision}")
    if steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {steps}")


def knee(points: Sequence[Point], slo: Slo) -> Point | None:
    """In a fixed sweep, the highest valid point below which every valid point meets the SLO.

    Points the load generator limited are skipped. A rate that passes again after a lower one
    failed does not count: the curve has already left the SLO. None when the lowest rate fails.
    """
    last_passing: Point | None = None
    for point in sorted((p for p in points if p.valid), key=lambda p: p.rate):
        if not meets(point, slo):
            break
        last_passing = point
    return last_passing


def interleaved(implementations: Sequence[str], trials: int) -> list[tuple[int, str]]:
    """The run order for repeated trials: every implementation once per round, every other round
    in reverse, A B C C B A A B C ….

    Interleaving spreads the slow drift of a shared machine (heat, noisy neighbours, caches)
    over every implementation alike, where running all of A's trials first would hand the drift
    to whichever ran last; reversing every other round balances each one's place in the round
    too, so that none always runs first after another (as a proxy after the direct call to the
    server behind it, which both share).
    """
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    names = list(implementations)
    return [(t, name) for t in range(trials) for name in (names if t % 2 == 0 else names[::-1])]
