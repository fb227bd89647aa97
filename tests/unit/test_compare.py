"""The gate's decision on synthetic samples: no change, a clear change, one too small to matter,
many comparisons at once, too few trials."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gate.compare import (
    Samples,
    decide,
    minimum_detectable_effect,
    pair_samples,
    pooled_noise,
    smallest_p,
)
from bench.models import ImplementationResult
from tests.unit.conftest import make_run, measured


def noisy(center: float, n: int, cv: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(x) for x in center * (1 + cv * rng.standard_normal(n))]


def s(metric: str, base: list[float], head: list[float], impl: str = "go") -> Samples:
    return Samples("fanout", impl, 1000.0, metric, base, head)


def test_a_clear_slowdown_of_p99_is_a_regression() -> None:
    (c,) = decide([s("p99", noisy(100, 8, 0.02, 1), noisy(110, 8, 0.02, 2))])
    assert c.verdict == "regression"
    assert c.change == pytest.approx(0.10, abs=0.03)
    assert c.change_low is not None
    assert c.change_high is not None
    assert c.change is not None
    assert 0.0 < c.change_low < c.change < c.change_high
    assert c.p_adjusted is not None
    assert c.p_adjusted < 0.05
    assert c.mde is not None
    assert c.mde < 0.05
    assert c.note == ""


def test_direction_follows_the_metric() -> None:
    lower, higher = noisy(100, 8, 0.01, 1), noisy(120, 8, 0.01, 2)
    throughput_down, p99_down = decide(
        [s("throughput_rps", higher, lower), s("p99", higher, lower)]
    )
    assert throughput_down.verdict == "regression"
    assert p99_down.verdict == "improvement"


def test_the_same_samples_are_no_change() -> None:
    base = noisy(100, 8, 0.03, 1)
    (c,) = decide([s("p50", base, list(reversed(base)))])
    assert c.verdict == "no change"
    assert c.p_value == pytest.approx(1.0)


def test_a_significant_change_below_the_minimum_effect_is_not_called() -> None:
    # 2% slower with 0.2% noise: certain, but under the 5% that matters.
    (c,) = decide([s("p99", noisy(100, 8, 0.002, 1), noisy(102, 8, 0.002, 2))])
    assert c.p_adjusted is not None
    assert c.p_adjusted < 0.01
    assert c.verdict == "no change"
    (strict,) = decide(
        [s("p99", noisy(100, 8, 0.002, 1), noisy(102, 8, 0.002, 2))], min_effect=0.01
    )
    assert strict.verdict == "regression"


def test_many_comparisons_without_change_stay_quiet() -> None:
    # 60 comparisons of samples drawn alike: uncorrected, about 3 would pass p < 0.05.
    samples = [
        s("p99", noisy(100, 8, 0.05, 2 * i), noisy(100, 8, 0.05, 2 * i + 1), impl=f"i{i}")
        for i in range(60)
    ]
    calls = decide(samples, min_effect=0.0)
    assert all(c.verdict == "no change" for c in calls)
    raw = [c.p_value for c in calls if c.p_value is not None]
    assert min(raw) < 0.1  # the correction, not luck, kept them quiet


def test_the_correction_still_finds_a_real_change_among_many() -> None:
    samples = [
        s("p99", noisy(100, 10, 0.02, 2 * i), noisy(100, 10, 0.02, 2 * i + 1), impl=f"i{i}")
        for i in range(10)
    ]
    samples.append(s("p99", noisy(100, 10, 0.02, 99), noisy(115, 10, 0.02, 98), impl="slow"))
    calls = decide(samples)
    assert [c.implementation for c in calls if c.verdict == "regression"] == ["slow"]


def test_too_few_trials_are_undecided_or_said_to_be_blind() -> None:
    (one,) = decide([s("p99", [100.0], [150.0, 151.0])])
    assert one.verdict == "undecided"
    assert "2 each are needed" in one.note
    (three,) = decide([s("p99", [100.0, 101.0, 99.0], [150.0, 151.0, 149.0])])
    assert three.verdict == "no change"  # 50% slower, but 3 vs 3 cannot reach p < 0.05
    assert three.mde is None
    assert "cannot reach significance" in three.note


def test_the_detectable_effect_shrinks_with_trials_and_grows_with_noise() -> None:
    assert smallest_p(3, 3) == pytest.approx(0.1)
    assert smallest_p(8, 8) == pytest.approx(2 / 12870)
    assert minimum_detectable_effect(0.05, 3, 3, 0.05) is None
    five, ten = (
        minimum_detectable_effect(0.05, 5, 5, 0.05),
        minimum_detectable_effect(0.05, 10, 10, 0.05),
    )
    assert five is not None
    assert ten is not None
    assert ten < five
    louder = minimum_detectable_effect(0.10, 10, 10, 0.05)
    assert louder == pytest.approx(2 * ten)
    assert pooled_noise([100.0, 100.0], [100.0, 100.0]) == 0.0


def test_runs_are_paired_by_implementation_and_rate() -> None:
    base = make_run(measured("go", [1000] * 50, rates=(100.0, 200.0)))
    head = make_run(
        measured("go", [1100] * 50, rates=(100.0,)),
        ImplementationResult(name="extra", language="go", status="ok"),
    )
    samples, problems = pair_samples(base, head)
    assert {(x.target_rps, x.metric) for x in samples} == {
        (100.0, "throughput_rps"), (100.0, "p50"), (100.0, "p99")
    }  # fmt: skip
    assert problems == ["fanout/go at 200.0: not in head"]
    assert all(len(x.base) == 3 and len(x.head) == 3 for x in samples)


def test_runs_of_different_patterns_are_not_compared() -> None:
    base = make_run(measured("go", [1000] * 50))
    other = base.model_copy(
        update={"scenario": base.scenario.model_copy(update={"pattern": "workerpool"})}
    )
    samples, problems = pair_samples(base, other)
    assert samples == []
    assert problems == ["the runs are of different patterns (fanout and workerpool)"]
