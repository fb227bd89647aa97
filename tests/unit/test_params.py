"""Parameters: durations with units, and the time budget's plan."""

from __future__ import annotations

import pytest

from bench.models import ParamValue
from bench.params import MIN_DURATION_S, MIN_TRIALS, parse_duration, plan_budget, trials_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), (" 4 s", 4.0)],
)
def test_durations_take_the_units_wrk_k6_and_vegeta_take(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "-1s", "10 minutes", "1e3"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like 500ms, 30s, 2m"):
        parse_duration(text)


def params(**changes: ParamValue) -> dict[str, ParamValue]:
    base: dict[str, ParamValue] = {"trials": 3, "warmup_s": 1.0, "duration_s": 4.0, "budget_s": 0.0}
    return {**base, **changes}


def test_no_budget_changes_nothing() -> None:
    plan = plan_budget(params(), implementations=2, rates=4)
    assert (plan.changes, plan.notes) == ({}, [])
    assert plan.planned_s == trials_seconds(params(), 8)


def test_a_budget_that_fits_changes_nothing() -> None:
    plan = plan_budget(params(budget_s=1000.0), implementations=2, rates=4)
    assert plan.changes == {}


def test_a_budget_cuts_trials_first() -> None:
    # 8 points × 3 trials × 7.5 s = 180 s; 2 trials = 120 s fit in 130 s.
    plan = plan_budget(params(budget_s=130.0), implementations=2, rates=4)
    assert plan.changes == {"trials": 2}
    assert plan.planned_s <= 130.0
    assert "time budget 130 s" in plan.notes[0]
    assert "trials 3 → 2" in plan.notes[0]


def test_then_shortens_the_window() -> None:
    plan = plan_budget(params(budget_s=100.0), implementations=2, rates=4)
    assert plan.changes["trials"] == MIN_TRIALS
    assert MIN_DURATION_S <= float(plan.changes["duration_s"]) < 4.0
    assert plan.planned_s <= 100.0 + 1.0
    assert "still over" not in plan.notes[0]


def test_and_says_when_even_the_least_does_not_fit() -> None:
    plan = plan_budget(params(budget_s=10.0), implementations=4, rates=3)
    assert plan.changes == {"trials": MIN_TRIALS, "duration_s": MIN_DURATION_S}
    assert "still over" in plan.notes[0]
