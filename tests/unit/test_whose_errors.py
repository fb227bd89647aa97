"""Whose errors a point's are: the system's answers (it shed load) or the generator's (nobody
answered), in the point's summary, its one-line note and the report."""

from __future__ import annotations

import pytest

from bench.models import ImplementationResult, LoadPoint
from bench.report.markdown import render_markdown
from bench.stats.headroom import describe_generator_kind, split_errors
from bench.stats.summary import error_note, make_point, trial_metrics
from tests.unit.conftest import make_load, make_run, make_trial


def point_with(kinds: dict[str, int], *, cap_hit: bool = False, trials: int = 2) -> LoadPoint:
    """A point whose every trial has 1,000 requests and these errors."""
    errors = sum(kinds.values())
    found = []
    for i in range(trials):
        load = make_load([1000] * 1000, target=1000.0).model_copy(
            update={"errors": errors, "error_kinds": kinds, "in_flight_cap_hit": cap_hit}
        )
        found.append(make_trial(i, load))
    return make_point(1000.0, found)


def measured_with(name: str, point: LoadPoint) -> ImplementationResult:
    return ImplementationResult(name=name, language="go", status="ok", points=[point])


def test_statuses_are_the_systems_and_everything_else_the_generators() -> None:
    split = split_errors(
        {"HTTP 503": 70, "HTTP 500": 2, "grpc Unavailable": 3, "unsent": 20, "timeout": 4},
        {"connection": 1, "ConnectionRefusedError": 5, "HTTP 503": 30},
    )
    assert split.system == {"HTTP 503": 100, "HTTP 500": 2, "grpc Unavailable": 3}
    assert split.generator == {"unsent": 20, "timeout": 4, "connection": 1,
                               "ConnectionRefusedError": 5}  # fmt: skip
    assert (split.system_total, split.generator_total, split.total) == (105, 30, 135)
    assert split_errors({}).total == 0


@pytest.mark.parametrize(
    ("kind", "cap_hit", "words"),
    [
        ("unsent", True, "never sent: the generator's in-flight cap was full"),
        ("unsent", False, "never sent: the generator fell behind its schedule"),
        ("timeout", False, "no answer within the generator's timeout"),
        ("connection", False, "connection refused, reset or closed without an answer"),
        ("RemoteDisconnected", False, "RemoteDisconnected (no answer)"),
    ],
)
def test_the_generators_kinds_in_words(kind: str, cap_hit: bool, words: str) -> None:
    assert describe_generator_kind(kind, cap_hit) == words


def test_the_summary_splits_the_error_rate() -> None:
    point = point_with({"HTTP 503": 150, "unsent": 50}, cap_hit=True)  # cap hit: still valid
    s = point.summary
    assert s["error_rate"].median == pytest.approx(0.2)
    assert s["system_error_rate"].median == pytest.approx(0.15)
    assert s["generator_error_rate"].median == pytest.approx(0.05)
    no_errors = trial_metrics(make_trial(0, make_load([1000] * 10)))
    assert (no_errors["system_error_rate"], no_errors["generator_error_rate"]) == (0.0, 0.0)


def test_the_note_says_whose_errors_over_all_trials() -> None:
    assert error_note(point_with({})) is None
    shed = error_note(point_with({"HTTP 503": 990, "timeout": 10}))
    assert shed == (
        "errors: 99.0% answered by the system (HTTP 503: 1,980), 1.0% the generator's, never "
        "answered (no answer within the generator's timeout: 20)"
    )
    queued = error_note(point_with({"unsent": 600}, cap_hit=True))
    assert queued == (
        "errors: 100.0% the generator's, never answered (never sent: the generator's in-flight "
        "cap was full: 1,200)"
    )


def test_the_report_says_whose_errors_in_the_verdicts_and_the_table() -> None:
    queued = point_with({"unsent": 600, "HTTP 503": 10}, cap_hit=True)
    shed = point_with({"HTTP 503": 600})
    run = make_run(
        measured_with("go", shed),
        measured_with("python-asyncio", queued),
    )
    text = render_markdown(run, None, [])
    assert "- go at 1,000 req/s, errors: 100.0% answered by the system (HTTP 503: 1,200)." in text
    line = next(x for x in text.splitlines() if x.startswith("- python-asyncio at 1,000 req/s"))
    assert "98.4% the generator's, never answered" in line
    assert "Most of them the system never answered" in line
    assert "| errors % (system / generator) |" in text
    row = next(x for x in text.splitlines() if x.startswith("| go |"))
    assert "| 60.00 (60.00 / 0.00) |" in row
    trial_row = next(x for x in text.splitlines() if x.startswith("| python-asyncio | 1,000 | 1 |"))
    assert "| 610 (10 / 600) |" in trial_row
