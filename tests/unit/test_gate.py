"""The gate's pure parts: merging single-trial runs, budgeting, refs that do not resolve."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import cli
from bench.catalog import load_catalog
from bench.gate.gate import GateError, merge, resolve, round_seconds, rounds
from bench.models import RunResult
from bench.params import TRIAL_OVERHEAD_S
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


def _round(valid: bool) -> RunResult:
    # A generator CPU of 95% is the harness's own reason to call a trial invalid.
    return make_run(measured("go", [1000] * 50, trials=1, generator_cpu=20.0 if valid else 95.0))


def test_an_invalid_trial_is_re_run_on_both_sides_until_each_has_its_trials() -> None:
    bad = {(1, "base"), (3, "head")}
    calls: list[tuple[int, str]] = []

    def one(index: int, side: str) -> RunResult:
        calls.append((index, side))
        return _round((index, side) not in bad)

    runs, note = rounds(one, trials=5, extra=5, pattern="fanout")
    # One invalid trial a side, in different rounds: one more round mends both sides.
    assert [i for i, side in calls if side == "base"] == [0, 1, 2, 3, 4, 5]
    assert calls[-2:] == [(5, "base"), (5, "head")]
    assert all(sum(t.valid for r in runs[s] for t in r.implementations[0].points[0].trials) >= 5
               for s in ("base", "head"))  # fmt: skip
    assert note.startswith("fanout: 1 extra round(s) re-run for invalid trials (")
    assert "generator" in note
    assert note.endswith(": replaced")


def test_re_runs_stop_at_their_bound_and_say_the_gate_is_still_short() -> None:
    calls: list[int] = []

    def one(index: int, side: str) -> RunResult:
        calls.append(index)
        return _round(side == "head" or index == 0)

    runs, note = rounds(one, trials=3, extra=2, pattern="fanout")
    assert len(runs["base"]) == len(runs["head"]) == 5
    assert note.endswith("still under 3 valid trials a side")


def test_no_invalid_trial_no_re_run_and_no_note() -> None:
    runs, note = rounds(lambda i, side: _round(True), trials=3, extra=3, pattern="fanout")
    assert len(runs["base"]) == 3
    assert note == ""


def test_a_round_costs_both_sides_every_implementation_measured_and_rate() -> None:
    catalog = load_catalog(REPO)
    fanout = catalog["fanout"]
    params = fanout.resolve_params("gate", {})
    # 2 sides × 2 implementations × 1 rate × (1 s warm-up + 2 s + no cool-down + overhead).
    trial = 1.0 + 2.0 + 0.0 + TRIAL_OVERHEAD_S
    assert round_seconds(fanout, params) == pytest.approx(2 * 2 * trial)
    # Only the implementations measured: the profile's four of rpc's six, or those asked for.
    rpc = catalog["rpc"]
    params = rpc.resolve_params("gate", {})
    assert round_seconds(rpc, params) == pytest.approx(2 * 4 * trial)
    assert round_seconds(rpc, params, ["go-grpc"]) == pytest.approx(2 * 1 * trial)


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
