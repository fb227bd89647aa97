from __future__ import annotations

import math

import pytest

from bench.stats.slo import Point, SearchResult, Slo, find_max_rate, interleaved, knee, meets

SLO = Slo()  # p99 ≤ 50 ms and errors ≤ 0.1%


class FakeSystem:
    """A synthetic system under test: latency and errors as functions of the offered rate."""

    def __init__(
        self,
        *,
        capacity: float,
        base_ms: float = 5.0,
        errors_above: float = math.inf,
        generator_limit: float = math.inf,
    ) -> None:
        self.capacity = capacity
        self.base_ms = base_ms
        self.errors_above = errors_above
        self.generator_limit = generator_limit
        self.measured: list[float] = []

    def measure(self, rate: float) -> Point:
        self.measured.append(rate)
        # An M/M/1-like queue: latency grows as 1 / (1 - utilisation) and diverges at capacity.
        utilisation = rate / self.capacity
        latency = self.base_ms / (1.0 - utilisation) if utilisation < 1.0 else math.inf
        return Point(
            rate=rate,
            latency_ms=latency,
            error_rate=0.02 if rate > self.errors_above else 0.0,
            valid=rate <= self.generator_limit,
        )


def search(system: FakeSystem, **kwargs: float) -> SearchResult:
    options: dict[str, float] = {"start": 100.0, "max_rate": 100_000.0} | kwargs
    return find_max_rate(
        system.measure,
        SLO,
        start=options["start"],
        max_rate=options["max_rate"],
        growth=options.get("growth", 2.0),
        precision=options.get("precision", 0.05),
        max_steps=int(options.get("max_steps", 12)),
    )


# --- Slo ---------------------------------------------------------------------------------------


def test_default_slo_describes_itself() -> None:
    assert SLO.describe() == "p99 ≤ 50 ms and errors ≤ 0.1%"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p99<=50ms,errors<=0.1%", Slo(p99_ms=50.0, max_error_rate=0.001, percentile=99.0)),
        ("p99.9<=200ms", Slo(p99_ms=200.0, max_error_rate=0.001, percentile=99.9)),
        (" P95 ≤ 1.5s , errors <= 1% ", Slo(p99_ms=1500.0, max_error_rate=0.01, percentile=95.0)),
        ("errors<=0%", Slo(max_error_rate=0.0)),
    ],
)
def test_parse_reads_latency_and_error_bounds(text: str, expected: Slo) -> None:
    assert Slo.parse(text) == expected


def test_parse_round_trips_through_describe_for_p99_9() -> None:
    slo = Slo.parse("p99.9<=200ms,errors<=0.5%")
    assert slo.describe() == "p99.9 ≤ 200 ms and errors ≤ 0.5%"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty SLO"),
        ("p99<=50", "neither a latency bound"),
        ("p99<50ms", "neither a latency bound"),
        ("errors<=0.1", "neither a latency bound"),
        ("latency<=50ms", "neither a latency bound"),
        ("p99<=50ms,", "'' is neither"),
        ("p99<=50ms,p90<=10ms", "latency bound is given twice"),
        ("errors<=1%,errors<=2%", "error bound is given twice"),
        ("p100<=50ms", "percentile must be between 0 and 100"),
        ("p99<=0ms", "latency bound must be positive"),
        ("errors<=150%", "error rate bound"),
    ],
)
def test_parse_rejects_bad_text_saying_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Slo.parse(text)


def test_a_point_exactly_at_both_bounds_meets_the_slo() -> None:
    assert meets(Point(rate=1.0, latency_ms=50.0, error_rate=0.001, valid=True), SLO)
    assert not meets(Point(rate=1.0, latency_ms=50.001, error_rate=0.0, valid=True), SLO)
    assert not meets(Point(rate=1.0, latency_ms=1.0, error_rate=0.0011, valid=True), SLO)
    assert not meets(Point(rate=1.0, latency_ms=math.nan, error_rate=0.0, valid=True), SLO)


def test_a_generator_limited_point_neither_meets_nor_fails() -> None:
    with pytest.raises(ValueError, match="limited by the load generator"):
        meets(Point(rate=1.0, latency_ms=1.0, error_rate=0.0, valid=False), SLO)


# --- find_max_rate -----------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [1000.0, 1234.0, 7777.0])
def test_search_finds_the_highest_rate_within_the_latency_bound(capacity: float) -> None:
    system = FakeSystem(capacity=capacity)
    true_max = 0.9 * capacity  # 5 / (1 - rate/C) = 50 ms  ⇔  rate = C (1 - 5/50)
    result = search(system, max_steps=20)
    assert result.best_rate is not None
    assert result.first_failing_rate is not None
    # At exactly 0.9 C floating point may land either side of 50 ms.
    assert result.best_rate <= true_max * (1 + 1e-9)
    assert result.first_failing_rate >= true_max * (1 - 1e-9)
    assert (result.first_failing_rate - result.best_rate) / result.best_rate <= 0.05
    assert result.best_rate >= true_max / 1.05
    assert not result.limited_by_generator
    assert "within 5%" in result.reason
    assert len(system.measured) == len(set(system.measured)) <= 20
    assert [p.rate for p in result.points] == system.measured


def test_search_grows_exponentially_then_bisects() -> None:
    system = FakeSystem(capacity=1000.0)
    search(system)
    assert system.measured[:5] == [100.0, 200.0, 400.0, 800.0, 1600.0]
    assert system.measured[5:7] == [1200.0, 1000.0]


def test_search_respects_the_error_bound() -> None:
    system = FakeSystem(capacity=1e9, base_ms=1.0, errors_above=700.0)
    result = search(system)
    assert result.best_rate is not None
    assert result.first_failing_rate is not None
    assert result.best_rate <= 700.0 < result.first_failing_rate
    assert result.best_rate >= 700.0 / 1.05


def test_search_when_the_first_rate_already_fails() -> None:
    system = FakeSystem(capacity=100.0)
    result = search(system, start=500.0)
    assert result.best_rate is None
    assert result.first_failing_rate == 500.0
    assert system.measured == [500.0]
    assert "first rate" in result.reason


def test_search_stops_at_a_generator_limited_point() -> None:
    system = FakeSystem(capacity=10_000.0, generator_limit=1000.0)
    result = search(system)
    assert result.limited_by_generator
    assert result.best_rate == 800.0
    assert result.first_failing_rate is None
    assert system.measured == [100.0, 200.0, 400.0, 800.0, 1600.0]
    assert not result.points[-1].valid
    assert "load generator" in result.reason


def test_search_reaching_max_rate_while_passing_measures_it_once() -> None:
    system = FakeSystem(capacity=1e9)
    result = search(system, max_rate=1000.0)
    assert result.best_rate == 1000.0
    assert result.first_failing_rate is None
    assert system.measured == [100.0, 200.0, 400.0, 800.0, 1000.0]
    assert "highest allowed rate" in result.reason


def test_search_with_start_equal_to_max_rate_measures_once() -> None:
    system = FakeSystem(capacity=1e9)
    result = search(system, start=300.0, max_rate=300.0)
    assert result.best_rate == 300.0
    assert system.measured == [300.0]


@pytest.mark.parametrize("budget", [1, 3, 6])
def test_search_respects_the_step_budget(budget: int) -> None:
    system = FakeSystem(capacity=1000.0)
    result = search(system, max_steps=budget, precision=0.001)
    assert len(system.measured) == budget
    assert "budget" in result.reason
    assert result.best_rate is not None
    assert result.best_rate < 900.0


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"start": 0.0}, "start must be positive"),
        ({"start": 200.0, "max_rate": 100.0}, "must be at least start"),
        ({"growth": 1.0}, "growth"),
        ({"precision": 0.0}, "precision"),
        ({"precision": 1.0}, "precision"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_search_rejects_bad_arguments(kwargs: dict[str, float], complaint: str) -> None:
    system = FakeSystem(capacity=1000.0)
    with pytest.raises(ValueError, match=complaint):
        search(system, **kwargs)
    assert system.measured == []


# --- knee --------------------------------------------------------------------------------------


def point(rate: float, latency_ms: float, *, valid: bool = True) -> Point:
    return Point(rate=rate, latency_ms=latency_ms, error_rate=0.0, valid=valid)


def test_knee_is_the_last_point_before_the_curve_leaves_the_slo() -> None:
    sweep = [
        point(500.0, 5.0),
        point(2000.0, 20.0),
        point(1000.0, 8.0),
        point(2500.0, 200.0, valid=False),  # the generator limited it: skipped
        point(3000.0, 60.0),  # leaves the SLO
        point(4000.0, 40.0),  # a blip back under the bound does not count
        point(5000.0, 90.0),
    ]
    assert knee(sweep, SLO) == point(2000.0, 20.0)


def test_knee_is_none_when_the_lowest_valid_rate_fails() -> None:
    assert (
        knee([point(100.0, 1.0, valid=False), point(500.0, 60.0), point(1000.0, 5.0)], SLO) is None
    )
    assert knee([], SLO) is None


def test_knee_of_a_sweep_that_always_passes_is_its_highest_rate() -> None:
    assert knee([point(500.0, 5.0), point(1000.0, 10.0)], SLO) == point(1000.0, 10.0)


# --- interleaved -------------------------------------------------------------------------------


def test_interleaved_runs_every_implementation_once_per_round_every_other_reversed() -> None:
    assert interleaved(["a", "b"], 2) == [(0, "a"), (0, "b"), (1, "b"), (1, "a")]
    assert [n for _, n in interleaved(["a", "b", "c"], 3)] == list("abccbaabc")
    assert interleaved(["go", "python", "rust"], 1) == [(0, "go"), (0, "python"), (0, "rust")]


def test_interleaved_needs_at_least_one_trial() -> None:
    with pytest.raises(ValueError, match="trials"):
        interleaved(["a"], 0)
