from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats.confidence import Estimate, median_ci, summarize


def normal_sample(n: int, *, seed: int = 1) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(100.0, 10.0, n)]


def test_interval_of_a_normal_sample_contains_the_true_median_and_is_narrower_than_its_range() -> (
    None
):
    sample = normal_sample(20)
    estimate = median_ci(sample)
    assert estimate.n == 20
    assert estimate.median == pytest.approx(float(np.median(sample)))
    assert estimate.low <= 100.0 <= estimate.high
    assert estimate.low <= estimate.median <= estimate.high
    assert estimate.high - estimate.low < max(sample) - min(sample)


def test_the_same_seed_gives_the_same_interval() -> None:
    sample = normal_sample(20)
    assert median_ci(sample, seed=7) == median_ci(sample, seed=7)


def test_a_higher_confidence_gives_a_wider_interval() -> None:
    sample = normal_sample(20)
    narrow, wide = median_ci(sample, 0.5), median_ci(sample, 0.99)
    assert wide.low <= narrow.low
    assert narrow.high <= wide.high
    assert wide.high - wide.low > narrow.high - narrow.low


def test_a_single_trial_has_no_interval() -> None:
    assert median_ci([42.0]) == Estimate(median=42.0, low=42.0, high=42.0, n=1)


def test_equal_samples_have_no_interval() -> None:
    estimate = median_ci([7.0, 7.0, 7.0, 7.0])
    assert estimate == Estimate(median=7.0, low=7.0, high=7.0, n=4)
    assert estimate.relative_halfwidth() == 0.0


@pytest.mark.parametrize(
    "sample",
    [[10.0, 12.0, 11.0], [10.0, 10.0, 12.0], [1.0, 1.0, 1.0, 2.0], [3.0, 9.0, 4.0, 5.0, 4.5]],
)
def test_three_to_five_trials_give_an_interval_around_the_median(sample: list[float]) -> None:
    # [1, 1, 1, 2] makes BCa undefined (equal leave-one-out medians): the percentile fallback runs.
    estimate = median_ci(sample)
    assert all(math.isfinite(v) for v in (estimate.low, estimate.high))
    assert min(sample) <= estimate.low <= estimate.median <= estimate.high <= max(sample)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        median_ci([])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_sample_that_is_not_a_number_is_an_error(bad: float) -> None:
    with pytest.raises(ValueError, match="sample 1 is"):
        median_ci([1.0, bad, 3.0])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0])
def test_confidence_outside_zero_to_one_is_an_error(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0, 2.0, 3.0], confidence)


def test_relative_halfwidth() -> None:
    assert Estimate(median=100.0, low=90.0, high=110.0, n=5).relative_halfwidth() == 0.1
    assert Estimate(median=-100.0, low=-110.0, high=-90.0, n=5).relative_halfwidth() == 0.1
    assert Estimate(median=0.0, low=-1.0, high=1.0, n=5).relative_halfwidth() == math.inf
    assert Estimate(median=0.0, low=0.0, high=0.0, n=5).relative_halfwidth() == 0.0


def test_summarize_estimates_each_metric_every_trial_reports() -> None:
    trials = [
        {"throughput_rps": 1000.0, "p50": 2.0, "p99": 9.0},
        {"throughput_rps": 1100.0, "p50": 2.0, "p99": 11.0, "cpu": 0.5},
        {"throughput_rps": 900.0, "p50": 2.0, "p99": 10.0},
    ]
    summary = summarize(trials)
    assert list(summary) == ["throughput_rps", "p50", "p99"]
    assert summary["throughput_rps"].median == 1000.0
    assert summary["throughput_rps"].n == 3
    assert summary["p50"] == Estimate(median=2.0, low=2.0, high=2.0, n=3)
    assert summary["p99"].low <= 10.0 <= summary["p99"].high


def test_summarize_without_trials_is_an_error() -> None:
    with pytest.raises(ValueError, match="no trials"):
        summarize([])


def test_the_interval_always_contains_the_median() -> None:
    # The bootstrap's own arithmetic put this interval's low end 1e-14 above the median (a run
    # of make bench); error bars then have a negative length and matplotlib refuses them.
    e = median_ci([106.367, 106.367, 106.431])
    assert e.low <= e.median <= e.high
