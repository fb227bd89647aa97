"""The self-check's parts that need no gate: its rates and the slowed revision it prepares."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.catalog import load_catalog
from bench.cli import PARTS
from bench.gate.selfcheck import SelfCheck, SelfCheckError, Target, prepare, rate, render

REPO = Path(__file__).resolve().parents[2]


def target(**overrides: str | None) -> Target:
    """The default target: the first pattern of the catalog with a [selfcheck] table."""
    catalog = load_catalog(REPO, PARTS.kinds())
    pattern = next(p for p in catalog.values() if p.selfcheck)
    return Target.of(pattern, **overrides)


def test_rates_carry_exact_binomial_intervals() -> None:
    none = rate(0, 20)
    assert none is not None
    assert (none.rate, none.low) == (0.0, 0.0)
    assert none.high == pytest.approx(0.1684, abs=1e-3)  # 0 of 20 still allows 17%
    all_ = rate(20, 20)
    assert all_ is not None
    assert all_.low == pytest.approx(0.8316, abs=1e-3)
    assert rate(0, 0) is None


def test_the_prepared_clone_has_a_clean_and_a_slowed_commit(tmp_path: Path) -> None:
    chosen = target()
    repo = prepare(REPO, tmp_path, 750, chosen)
    diff = subprocess.run(["git", "diff", "clean", "slowed"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert f"+++ b/{chosen.file}" in diff
    assert "+\tfor start := time.Now(); time.Since(start) < 750*time.Microsecond; {" in diff
    assert diff.count("\n+\t") == 2  # the busy wait's two lines, nothing else
    assert not (REPO / ".git" / "refs" / "tags" / "slowed").exists()  # nothing tagged here


def test_the_summary_states_both_rates_against_their_targets() -> None:
    check = SelfCheck(
        pattern="fanout", implementation="go", delay_us=750, min_effect=0.05, overrides={},
        false_positives=rate(1, 20), detections=rate(19, 20), aa_verdicts=["pass"] * 20,
        ab_verdicts=["regression"] * 19 + ["no change"], ab_p50_changes=[0.1] * 20,
        seconds_per_gate=70.0,
    )  # fmt: skip
    text = render(check)
    assert "1 of 20 = 5% (95% interval 0% to 25%). Target ≤ 5%." in text
    assert "19 of 20 = 95% (95% interval 75% to 100%)" in text
    assert "averaged +10.0%" in text


def test_the_target_comes_from_options_over_the_table(tmp_path: Path) -> None:
    chosen = target(file="go/cmd/hello/main.go", after="func main() {", code="\t_ = {delay_us}")
    assert chosen.file == "go/cmd/hello/main.go"
    repo = prepare(REPO, tmp_path, 123, chosen)
    text = (repo / "go" / "cmd" / "hello" / "main.go").read_text()
    assert "func main() {\n\t_ = 123\n" in text


def test_a_missing_line_to_slow_down_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SelfCheckError, match=r"the line to slow down after was not found: 'nope'"):
        prepare(REPO, tmp_path, 750, target(after="nope"))
