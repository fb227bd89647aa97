"""The gate's pure parts: merging single-trial runs, budgeting, refs that do not resolve."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import cli
from bench.catalog import load_catalog
from bench.gate.gate import GateError, merge, resolve, round_seconds
from tests.unit.conftest import make_run, measured

REPO = Path(__file__).resolve().parents[2]


def test_single_trial_runs_merge_into_one_run_per_side() -> None:
    runs = [
        make_run(measured("go", [1000 + 10 * i] * 50, rates=(100.0, 200.0), trials=1))
        for i in range(4)
    ]
    merged = merge(runs)
    (impl,) = merged.implementations
    assert [p.target_rps for p in impl.points] == [100.0, 200.0]
    for point in impl.points:
        assert [t.index for t in point.trials] == [0, 1, 2, 3]
        assert point.summary["p50"].n == 4
    assert merged.scenario.trials == 4


def test_a_failure_in_any_round_marks_the_merged_implementation() -> None:
    ok = make_run(measured("go", [1000] * 50, trials=1))
    impl = ok.implementations[0].model_copy(update={"status": "failed", "error": "crashed"})
    failed = ok.model_copy(update={"implementations": [impl]})
    merged = merge([ok, failed, ok])
    assert merged.implementations[0].status == "failed"
    assert merged.implementations[0].error == "crashed"


def test_a_round_costs_both_sides_every_implementation_and_rate() -> None:
    fanout = load_catalog(REPO)["fanout"]
    params = fanout.resolve_params("gate", {})
    # 2 sides × 2 implementations × 1 rate × (1 s warm-up + 2 s + 2 s overhead).
    assert round_seconds(fanout, params) == pytest.approx(20.0)


def test_a_ref_that_is_not_a_commit_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(GateError, match="no-such-ref: not a commit"):
        resolve(REPO, "no-such-ref")
    assert cli.main(["gate", "--base", "no-such-ref", "--head", "HEAD"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "patternbench: no-such-ref: not a commit in this repository"


def test_head_resolves_to_the_checked_out_commit() -> None:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    assert resolve(REPO, "HEAD") == sha
