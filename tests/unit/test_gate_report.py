"""gate.json / gate.md and `patternbench compare` on stored runs with known differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli
from bench.gate.compare import Samples, decide
from bench.gate.gate_report import Side, make_result, render_markdown
from bench.models import RunResult
from bench.store import save_run
from tests.unit.conftest import make_run, measured

SIDE = Side(label="main", git_sha="0123456789abcdef", runs=["results/runs/x"])


def run_with(name: str, scale: float, trials: int, run_id: str) -> RunResult:
    latencies = [round(1000 * scale * (1 + 0.001 * i)) for i in range(200)]
    return make_run(measured(name, latencies, trials=trials), run_id=run_id)


def test_a_regression_outranks_an_undecided_comparison() -> None:
    comps = decide(
        [
            Samples(
                "p",
                "go",
                100.0,
                "p99",
                [100.0 + i for i in range(8)],
                [130.0 + i for i in range(8)],
            ),
            Samples("p", "py", 100.0, "p99", [100.0], [100.0, 101.0]),
        ]
    )
    result = make_result(SIDE, SIDE, comps, [], alpha=0.05, min_effect=0.05)
    assert (result.verdict, result.exit_code) == ("regression", 1)
    text = render_markdown(result)
    assert "❌ **Regression.**" in text
    assert "| p | go | 100 | p99 | 104 ms | 134 ms | +29.0% (+25.4% to +32.7%) |" in text
    assert "⚠️ undecided" in text


def test_no_change_with_enough_trials_passes() -> None:
    base = [100.0 + (i % 3) for i in range(10)]
    comps = decide([Samples("p", "go", 100.0, "p50", base, list(reversed(base)))])
    result = make_result(SIDE, SIDE, comps, [], alpha=0.05, min_effect=0.05)
    assert (result.verdict, result.exit_code) == ("pass", 0)
    assert result.warnings == []


def test_problems_or_blind_comparisons_are_undecided() -> None:
    comps = decide([Samples("p", "go", 100.0, "p50", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])])
    blind = make_result(SIDE, SIDE, comps, [], alpha=0.05, min_effect=0.05)
    assert (blind.verdict, blind.exit_code) == ("undecided", 2)
    assert "too few trials to call any change in: go p50" in blind.warnings[0]
    failed = make_result(SIDE, SIDE, [], ["p/go: failed in head: boom"], alpha=0.05,
                         min_effect=0.05)  # fmt: skip
    assert failed.verdict == "undecided"
    assert "- p/go: failed in head: boom" in render_markdown(failed)


def test_compare_finds_a_slower_head_and_writes_gate_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_run(run_with("go", 1.0, 8, "base"), tmp_path / "base")
    save_run(run_with("go", 1.3, 8, "head"), tmp_path / "head")
    status = cli.main(["compare", "base", "head", "--runs-dir", str(tmp_path)])
    assert status == 1
    gate = json.loads((tmp_path / "head" / "compare-base" / "gate.json").read_text())
    assert gate["verdict"] == "regression"
    verdicts = {c["metric"]: c["verdict"] for c in gate["comparisons"]}
    assert verdicts == {"throughput_rps": "no change", "p50": "regression", "p99": "regression"}
    assert "Regression" in (tmp_path / "head" / "compare-base" / "gate.md").read_text()
    assert "Regression" in capsys.readouterr().out


def test_compare_of_a_run_with_itself_passes(tmp_path: Path) -> None:
    save_run(run_with("go", 1.0, 8, "a"), tmp_path / "a")
    out = tmp_path / "gate"
    assert cli.main(["compare", "a", "a", "--runs-dir", str(tmp_path), "--out", str(out)]) == 0
    assert json.loads((out / "gate.json").read_text())["exit_code"] == 0


def test_a_foreign_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_run(run_with("go", 1.0, 8, "a"), tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text('{"schema_version": 7}')
    assert cli.main(["compare", "a", "b", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "schema_version: 7 is not supported" in err
