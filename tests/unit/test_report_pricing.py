"""The pricing sections: latency added over a baseline (paired by trial), and admission."""

from __future__ import annotations

import pytest

from bench.models import ImplementationResult, LoadPoint, ProcessStats, RunResult
from bench.report import pricing
from bench.stats.summary import make_point, trial_metrics
from tests.unit.conftest import make_load, make_run, make_trial, measured


def with_baseline(*impls: ImplementationResult, baseline: str = "direct") -> RunResult:
    run = make_run(*impls)
    scenario = run.scenario.model_copy(update={"baseline": baseline})
    return run.model_copy(update={"scenario": scenario})


def test_added_latency_is_the_median_of_trial_by_trial_differences() -> None:
    direct = measured("direct", [1000] * 100)
    edge = measured("edge", [1500] * 100)
    point, base = edge.points[0], direct.points[0]
    added = pricing.paired_difference(point, base, "p50")
    assert added is not None
    # Trial i's latencies are scaled by 1 + 0.01 i on both sides: 1,500 vs 1,000 µs, so the
    # differences are 0.5, 0.505 and 0.51 ms.
    assert added.median == pytest.approx(0.505, abs=1e-3)
    assert added.n == 3
    assert added.low <= added.median <= added.high


def test_only_trials_valid_on_both_sides_are_paired() -> None:
    base = measured("direct", [1000] * 50).points[0]
    invalid = make_trial(1, make_load([2000] * 50, generator_cpu=99.0))  # generator-bound
    assert not invalid.valid
    trials = [make_trial(0, make_load([2000] * 50)), invalid, make_trial(2, make_load([2000] * 50))]
    point = make_point(100.0, trials)
    added = pricing.paired_difference(point, base, "p99")
    assert added is not None
    assert added.n == 2


def test_the_added_table_names_the_baseline_and_prices_each_row() -> None:
    run = with_baseline(measured("direct", [1000] * 100), measured("edge", [1200] * 100))
    lines = pricing.added_table(run)
    assert lines[0] == "## Added over direct"
    rows = [line for line in lines if line.startswith("| direct |") or line.startswith("| edge |")]
    assert len(rows) == 2
    assert "(baseline)" in rows[0]
    assert "+0.2" in rows[1].split(" | ")[4]


def test_no_baseline_no_table_and_an_unmeasured_one_says_so() -> None:
    run = make_run(measured("direct", [1000] * 10))
    assert pricing.added_table(run) == []
    failed = ImplementationResult(name="direct", language="python", status="failed")
    lines = pricing.added_table(with_baseline(failed, measured("edge", [1000] * 10)))
    assert any("No rate where direct" in line for line in lines)


def limited(admitted_per_s: float, refused: int, kind: str = "HTTP 429") -> ImplementationResult:
    """A rate limiter of 400/s offered 800/s: `admitted_per_s` successes, `refused` errors."""
    trials = []
    for i in range(2):
        load = make_load([1000] * 50, target=800.0).model_copy(
            update={
                "requests": 8000,
                "errors": refused,
                "error_kinds": {kind: refused},
                "throughput_rps": admitted_per_s,
            }
        )
        trials.append(make_trial(i, load))
    under: LoadPoint = measured("x", [1000] * 50, rates=(200.0,), trials=2).points[0]
    return ImplementationResult(
        name="edge-ratelimit",
        language="go",
        status="ok",
        points=[under, make_point(800.0, trials)],
        admits_rps=400.0,
    )


def test_admission_passes_within_five_percent_with_every_refusal_answered() -> None:
    rows = pricing.admission_rows(limited(410.0, 3900))
    assert len(rows) == 1  # the point under the limit is not an admission check
    point, admitted, text, passed = rows[0]
    assert point.target_rps == 800.0
    assert admitted.median == 410.0
    assert passed
    assert "+2.5%" in text
    assert "HTTP 429 × 7,800" in text


def test_admission_fails_off_the_limit_or_with_timeouts() -> None:
    assert not pricing.admission_rows(limited(460.0, 3400))[0][3]  # 15% over
    assert not pricing.admission_rows(limited(400.0, 4000, kind="timeout"))[0][3]
    lines, bullets = pricing.admission_table(make_run(limited(460.0, 3400)))
    assert lines[0] == "## Admission against the configured limit"
    assert "**outside 5%" in bullets[0]


def test_a_limit_never_exceeded_is_said_not_checked() -> None:
    impl = measured("edge-ratelimit", [1000] * 10, rates=(200.0,))
    impl = impl.model_copy(update={"admits_rps": 400.0})
    lines, bullets = pricing.admission_table(make_run(impl))
    assert bullets == []
    assert "was not checked" in lines[2]


def test_each_feature_is_priced_against_its_none_reference() -> None:
    plain = measured("plain", [1000] * 100).model_copy(update={"labels": {"feature": "none"}})
    auth = measured("auth", [1300] * 100).model_copy(update={"labels": {"feature": "auth"}})
    lines = pricing.feature_table(make_run(plain, auth))
    assert lines[0] == "## What each feature adds"
    (row,) = [line for line in lines if line.startswith("| auth")]
    cells = row.split(" | ")
    assert cells[1] == "plain"
    assert cells[3].startswith("+0.3")  # added p50: 1.3 vs 1.0 ms
    # make_trial's CPU is 10 + index % on both sides: the same, so nothing added, its own or the
    # system's (without parts, the system's is its own).
    assert cells[5] == "+0"
    assert cells[6] == "+0 |"


def test_points_past_one_percent_failed_are_not_priced() -> None:
    direct = measured("direct", [1000] * 100)
    failing = measured("edge", [1000] * 100, errors=5)  # 5% refused
    lines = pricing.added_table(with_baseline(direct, failing))
    assert not any(line.startswith("| edge |") for line in lines)


def test_the_system_s_cpu_adds_the_parts_measured_beside_the_implementation() -> None:
    core = ProcessStats(cpu_seconds=2.0, cpu_percent=20.0, peak_rss_bytes=1)
    edge = measured("edge", [1000] * 100)
    point = edge.points[0]
    trials = [t.model_copy(update={"system_parts": {"core": core}}) for t in point.trials]
    trial = trials[0]
    found = trial_metrics(trial)
    # 100 calls in 10 s: 10 calls/s; the edge's 10% and the core's 20% of a core.
    assert found["cpu_us_per_call"] == pytest.approx(10_000)
    assert found["system_cpu_us_per_call"] == pytest.approx(30_000)
