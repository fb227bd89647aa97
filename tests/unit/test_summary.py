from __future__ import annotations

import pytest

from bench.stats.slo import Slo
from bench.stats.summary import make_point, slo_point, trial_metrics
from tests.unit.conftest import make_load, make_trial


def test_trial_metrics_carry_corrected_uncorrected_slip_and_server_bounds() -> None:
    metrics = trial_metrics(make_trial(0, make_load([1000, 2000, 3000])))
    assert metrics["p50"] == pytest.approx(2.0, rel=1e-2)
    assert list(metrics)[4:10] == ["p50", "p90", "p95", "p99", "p999", "max"]
    assert metrics["u_p99"] == pytest.approx(3.0, rel=1e-2)
    assert metrics["slip_p99"] == pytest.approx(0.2, rel=1e-2)
    assert metrics["server_p99_high"] == 2.0
    assert metrics["error_rate"] == 0.0


def test_point_summarises_valid_trials_only() -> None:
    good = [make_trial(i, make_load([1000 * (i + 1)] * 50)) for i in range(3)]
    bad = make_trial(3, make_load([100_000] * 50, generator_cpu=99.0))
    point = make_point(100.0, [*good, bad])
    assert point.valid
    assert point.summary["p50"].n == 3
    assert point.summary["p50"].median == pytest.approx(2.0, rel=1e-2)
    assert point.summary["p50"].low <= 2.0 <= point.summary["p50"].high


def test_a_point_with_mostly_invalid_trials_is_invalid_and_has_no_summary_when_none_valid() -> None:
    bad = [make_trial(i, make_load([1000] * 50, generator_cpu=99.0)) for i in range(3)]
    assert make_point(100.0, bad).summary == {}
    assert not make_point(100.0, bad).valid
    one_good = [make_trial(9, make_load([1000] * 50)), *bad]
    assert not make_point(100.0, one_good).valid


def test_slo_point_uses_the_slos_percentile_and_the_error_rate() -> None:
    point = make_point(
        400.0, [make_trial(i, make_load([10_000] * 99 + [90_000])) for i in range(3)]
    )
    judged = slo_point(point, Slo(p99_ms=50.0))
    assert judged.rate == 400.0
    assert judged.latency_ms == pytest.approx(10.0, rel=1e-2)
    at_p95 = slo_point(point, Slo(p99_ms=50.0, percentile=95.0))
    assert at_p95.latency_ms == pytest.approx(point.summary["p95"].median)
    assert judged.valid
    assert judged.error_rate == 0.0
