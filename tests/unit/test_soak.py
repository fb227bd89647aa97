"""The soak campaign's pure parts: the fault schedule, the checks on what a run left, soak.json."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.catalog import load_catalog
from bench.cli import PARTS
from bench.models import ImplementationResult, LoadPoint
from bench.soak import add_parser, checks, schedule
from bench.soak.campaign import choose_offset, pattern_ports
from bench.soak.command import CHEAP, _plan, shape_of
from bench.soak.models import (
    Counts,
    Fault,
    Injection,
    Leftover,
    RunRecord,
    SoakResult,
    Target,
    TrialRef,
    total,
)
from bench.soak.options import FAULT_KINDS, parse_kinds
from bench.store import save_run
from tests.unit.conftest import make_run, make_trial, measured

REPO = Path(__file__).resolve().parents[2]
SHAPE = schedule.Shape(trials=4, warmup_s=0.5, duration_s=2.0)
FAST = [1000 + i for i in range(200)]

# ---- the schedule -----------------------------------------------------------------------------


def test_the_same_seed_plans_the_same_faults_and_another_seed_other_moments() -> None:
    assert schedule.plan(40, 7, SHAPE) == schedule.plan(40, 7, SHAPE)
    assert schedule.plan(40, 7, SHAPE) != schedule.plan(40, 8, SHAPE)


def test_forty_runs_inject_every_kind_eight_times_and_four_runs_each_main_kind_once() -> None:
    assert Counter(f.kind for f in schedule.plan(40, 1, SHAPE)) == dict.fromkeys(FAULT_KINDS, 8)
    assert [f.kind for f in schedule.plan(4, 1, SHAPE)] == [
        "harness-sigint", "harness-sigkill", "system-sigkill", "support-sigkill"
    ]  # fmt: skip


def test_a_killed_system_or_support_dies_inside_a_measured_window() -> None:
    for fault in schedule.plan(200, 3, SHAPE):
        if fault.kind.startswith("harness"):
            if fault.phase == "startup":
                assert fault.trial is None
                assert 0 <= fault.offset_s <= schedule.STARTUP_MAX_S
            else:
                assert fault.trial in range(SHAPE.trials)
                assert schedule.MARGIN_S <= fault.offset_s <= SHAPE.window_s - schedule.MARGIN_S
            continue
        assert fault.phase == "trial"
        assert fault.trial in range(SHAPE.trials)
        assert SHAPE.warmup_s + schedule.MARGIN_S <= fault.offset_s
        assert fault.offset_s <= SHAPE.window_s - schedule.MARGIN_S


def test_harness_signals_land_in_start_up_as_well_as_in_trials() -> None:
    phases = Counter(f.phase for f in schedule.plan(200, 5, SHAPE) if f.kind == "harness-sigkill")
    assert 0 < phases["startup"] < phases["trial"]


def test_fault_kinds_are_chosen_by_name_in_the_order_given() -> None:
    assert parse_kinds("system-sigkill, harness-sigterm") == [
        "system-sigkill", "harness-sigterm"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no fault kind 'sigkill'"):
        parse_kinds("sigkill")
    assert {f.kind for f in schedule.plan(6, 1, SHAPE, ["support-sigkill"])} == {"support-sigkill"}


def test_the_shape_of_a_cheap_fanout_run_is_four_short_trials() -> None:
    fanout = load_catalog(REPO, PARTS.kinds())["fanout"]
    assert shape_of(fanout, dict(CHEAP)) == SHAPE
    assert pattern_ports(fanout) == [8081, 8082, 9101, 9102]


def test_each_run_gets_ports_that_are_free_and_no_earlier_run_had() -> None:
    ports = [8081, 8082, 9101, 9102]
    assert choose_offset(ports, 12_000, set(), lambda p: True) == 12_000
    used = {p + 12_000 for p in ports}
    assert choose_offset(ports, 12_000, used, lambda p: True) == 12_010
    assert choose_offset(ports, 12_000, used, lambda p: p != 20_092) == 12_020
    with pytest.raises(ValueError, match="no free ports"):
        choose_offset(ports, 56_000, set(), lambda p: False)


# ---- attribution -------------------------------------------------------------------------------

REF = TrialRef(implementation="go", rate="500", index=1)


def _go(*, trials: int = 2, broken: int | None = None, status: str = "ok") -> ImplementationResult:
    impl = measured("go", FAST, rates=(500.0,), trials=trials)
    if broken is not None:
        point = impl.points[0]
        trial = point.trials[broken].model_copy(
            update={"valid": False, "invalid_reasons": ["support latencysim (pid 7) was killed"]}
        )
        trials_ = [trial if t.index == broken else t for t in point.trials]
        impl = impl.model_copy(update={"points": [point.model_copy(update={"trials": trials_})]})
    if status != "ok":
        impl = impl.model_copy(update={"status": status, "error": "exited with status -9"})
    return impl


def test_the_broken_trial_valid_with_status_ok_is_called_valid() -> None:
    wrong, verdict = checks.judge(make_run(_go()), REF, "support", "latencysim")
    assert wrong
    assert (
        verdict
        == "go at 500 req/s, trial 1: valid, and go ok, though support latencysim was killed"
    )


def test_the_broken_trial_invalid_or_the_implementation_failed_is_right() -> None:
    wrong, verdict = checks.judge(make_run(_go(broken=1)), REF, "support", "latencysim")
    assert not wrong
    assert verdict == "go at 500 req/s, trial 1: invalid: support latencysim (pid 7) was killed"
    wrong, verdict = checks.judge(make_run(_go(status="failed")), REF, "system", "go")
    assert not wrong
    assert verdict == "go failed: exited with status -9"


def test_an_invalid_trial_that_does_not_name_the_killed_process_says_so() -> None:
    _, verdict = checks.judge(make_run(_go(broken=1)), REF, "support", "redis")
    assert verdict.endswith("(not naming redis)")


def test_only_another_trial_invalid_does_not_excuse_the_broken_one() -> None:
    wrong, _ = checks.judge(make_run(_go(broken=0)), REF, "support", "latencysim")
    assert wrong


def test_a_broken_trial_missing_from_the_result_is_wrong_only_when_all_else_looks_fine() -> None:
    dropped = TrialRef(implementation="go", rate="500", index=5)
    wrong, verdict = checks.judge(make_run(_go()), dropped, "system", "go")
    assert wrong
    assert "missing, and all 2 other trials valid" in verdict
    wrong, _ = checks.judge(make_run(_go(broken=0)), dropped, "system", "go")
    assert not wrong


def test_no_result_or_no_such_implementation_is_not_called_valid() -> None:
    assert checks.judge(None, REF, "system", "go") == (False, "no result written")
    other = TrialRef(implementation="python-asyncio", rate="500", index=0)
    assert checks.judge(make_run(_go()), other, "system", "python-asyncio")[0] is False


def test_a_closed_loop_trial_folder_names_its_point() -> None:
    point = LoadPoint(target_rps=None, trials=[make_trial(0, measured("x", FAST).points[0]
                                                         .trials[0].load)], summary={},
                      valid=True)  # fmt: skip
    impl = ImplementationResult(name="go", language="go", status="ok", points=[point])
    ref = TrialRef(implementation="go", rate="closed", index=0)
    assert checks.judge(make_run(impl), ref, "system", "go")[0] is True


def test_trial_folders_are_read_back_into_trials() -> None:
    folder = Path("/r/run/logs/python-asyncio/rate-500-trial-1")
    assert checks.trial_ref(folder) == TrialRef(
        implementation="python-asyncio", rate="500", index=1
    )
    assert checks.trial_ref(Path("/r/run/logs/go/rate-closed-trial-0")) == TrialRef(
        implementation="go", rate="closed", index=0
    )
    assert checks.trial_ref(Path("/r/run/logs/go.measure.log")) is None


# ---- files and exits ---------------------------------------------------------------------------


def test_corrupt_results_and_leftover_temporary_files_are_found(tmp_path: Path) -> None:
    save_run(make_run(_go()), tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text('{"schema_version": 4, "run_id": ')
    (tmp_path / "bad" / "loadgen.json").write_text("{")
    (tmp_path / "bad" / ".run.json.k2j3.tmp").write_text("{")
    (tmp_path / "good" / "notes.txt").write_text("not json, not checked")
    found = checks.corrupt_files(tmp_path)
    assert len(found) == 3
    assert found[0].endswith(".run.json.k2j3.tmp: temporary file of an atomic write left behind")
    assert found[1].startswith(f"{tmp_path}/bad/loadgen.json: not JSON")
    assert found[2].startswith(f"{tmp_path}/bad/run.json: not JSON")
    assert checks.corrupt_files(tmp_path / "good") == []


ONE_LINE = "fanout/go: ok ━━━ 1.0/2.5 s\npatternbench: interrupted; every process it started has been stopped\n"  # noqa: E501


@pytest.mark.parametrize(
    ("kind", "fired", "code", "stderr", "problem"),
    [
        ("harness-sigint", True, 130, ONE_LINE, None),
        ("harness-sigterm", True, 143, ONE_LINE, None),
        ("harness-sigterm", True, -15, "", "exit -15, not 130 or 143"),
        ("harness-sigint", True, 130, "patternbench: a\npatternbench: b\n",
         "exit 130, but stderr ends with 2 patternbench: lines, not one"),
        ("harness-sigint", True, 130, ONE_LINE + "Traceback\n",
         "exit 130, but stderr ends with 1 patternbench: lines, not one"),
        ("harness-sigkill", True, -9, "", None),
        ("harness-sigkill", True, 0, "", "exit 0 after SIGKILL, not -9"),
        ("system-sigkill", True, 1, "", None),
        ("support-sigkill", True, 0, "", None),
        ("support-sigkill", True, 2, "", "exit 2, not 0 or 1"),
        ("harness-sigint", False, 0, "", None),
        ("system-sigkill", True, None, "",
         "did not end (killed by the campaign after its time-out)"),
    ],
)  # fmt: skip
def test_exit_statuses_must_fit_the_fault(
    kind: str, fired: bool, code: int | None, stderr: str, problem: str | None
) -> None:
    (chosen,) = parse_kinds(kind)
    assert checks.bad_exit(chosen, fired, code, stderr) == problem


def test_a_traceback_is_found_anywhere_on_stderr() -> None:
    assert checks.has_traceback("x\nTraceback (most recent call last):\n  File ...")
    assert not checks.has_traceback(ONE_LINE)


# ---- soak.json ---------------------------------------------------------------------------------


def _record(run: int, **found: object) -> RunRecord:
    fault = Fault(run=run, kind="support-sigkill", phase="trial", trial=3, offset_s=1.4)
    target = Target(role="support", name="latencysim", pid=42, command="go/bin/latencysim")
    injection = Injection(fired=True, at=datetime(2026, 11, 29, tzinfo=UTC), after_start_s=17.0,
                          trial=REF, target=target)  # fmt: skip
    return RunRecord(fault=fault, port_offset=12_000 + 10 * run, runs_dir="/x", injection=injection,
                     exit_code=0, duration_s=20.0, **found)  # type: ignore[arg-type]  # fmt: skip


def _result(runs: list[RunRecord]) -> SoakResult:
    return SoakResult(
        started_at=datetime(2026, 11, 29, tzinfo=UTC),
        finished_at=datetime(2026, 11, 29, 1, tzinfo=UTC),
        pattern="fanout",
        seed=1,
        runs_asked=len(runs),
        budget_min=None,
        settle_s=10.0,
        harness_args=["--profile", "quick"],
        runs=runs,
        totals=total(runs),
    )


def test_counts_add_up_and_the_total_line_says_them() -> None:
    runs = [
        _record(0),
        _record(1, orphans=[Leftover(pid=9, command="go/bin/fanout", found_by="descendant")],
                held_ports=[20092, 21111], broken_called_valid=True),
        _record(2, corrupt_files=["a: not JSON"], traceback=True, bad_exit="exit 2, not 0 or 1"),
    ]  # fmt: skip
    totals = total(runs)
    assert totals == Counts(faults=3, orphans=1, held_ports=2, corrupt_files=1,
                            broken_called_valid=1, tracebacks=1, bad_exits=1)  # fmt: skip
    assert totals.problems() == 7
    assert totals.line() == (
        "soak: 3 faults, 1 orphans, 2 held ports, 1 corrupt files, 1 broken trials called valid, "
        "1 tracebacks, 1 bad exits"
    )
    assert total([_record(0)]).problems() == 0


def test_soak_json_reads_back_and_its_totals_must_add_up() -> None:
    result = _result([_record(0), _record(1, held_ports=[20092])])
    again = SoakResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert again.totals.held_ports == 1
    with pytest.raises(ValueError, match="not the sum"):
        SoakResult.model_validate({**result.model_dump(), "totals": Counts().model_dump()})


def test_a_fault_that_did_not_fire_counts_no_fault() -> None:
    record = _record(0).model_copy(update={"injection": Injection(fired=False, note="ended")})
    assert record.counts().faults == 0
    assert _result([record]).not_fired() == 1


# ---- the command line --------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    top = argparse.ArgumentParser(prog="patternbench")
    add_parser(top.add_subparsers(dest="command", required=True))
    return top.parse_args(["soak", *argv])


def test_the_flags_and_their_defaults() -> None:
    args = _parse()
    assert (args.runs, args.seed, args.pattern, args.port_offset) == (40, 0, None, 12_000)
    assert (args.faults, args.budget, args.settle) == (list(FAULT_KINDS), None, 10.0)
    args = _parse("--runs", "4", "--budget", "90s", "--faults", "harness-sigint")
    assert (args.runs, args.budget, args.faults) == (4, 1.5, ["harness-sigint"])


@pytest.mark.parametrize(
    "argv",
    [["--runs", "0"], ["--faults", "sigkill"], ["--budget", "soon"], ["--seed", "x"],
     ["--settle", "-1"], ["--run-timeout", "0"], ["--port-offset", "nan"]],
)  # fmt: skip
def test_bad_flags_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        _parse(*argv)
    assert stopped.value.code == 2


def test_the_flags_load_without_the_campaign() -> None:
    """`patternbench --help` and a bad flag must not wait for the campaign's imports."""
    code = "import bench.soak, sys; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    assert [m for m in loaded if m.startswith("bench.soak.") and m != "bench.soak.options"] == []
    assert "bench.catalog" not in loaded


def test_the_default_pattern_is_the_first_with_a_trial_scoped_support_process() -> None:
    fanout = load_catalog(REPO, PARTS.kinds())["fanout"]
    args = _parse("--runs", "1")
    assert _plan(args, PARTS)[1] == fanout


def test_an_unknown_pattern_or_parameter_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, says in (
        (["--pattern", "nope"], "patternbench soak: no pattern 'nope' (known: "),
        (["--param", "nope=1"], "patternbench soak: --param nope: fanout has no such parameter"),
        (["--param", "nope"], "patternbench soak: --param nope: expected KEY=VALUE"),
    ):
        args = _parse(*argv, "--out", str(tmp_path / "out"))
        assert args.func(args, PARTS) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(says)
    assert not (tmp_path / "out").exists()
