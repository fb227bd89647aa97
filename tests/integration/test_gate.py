"""The gate for real: the same revision on both sides passes; an injected sleep fails it.

Both run on a clone of this repository (so the tests commit nothing here), on the fan-out
pattern's Go implementation only, with the fewest trials that can reach significance for its
three comparisons (5 a side) and short windows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.gate.gate import GateOptions, run_gate
from bench.gate.gate_report import GateResult
from tests.integration.conftest import REPO, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

SHORT = {"trials": "5", "warmup_s": "0.5", "duration_s": "1", "rates": "500"}
SLEEP = "\ttime.Sleep(20 * time.Millisecond) // injected by tests/integration/test_gate.py\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """This repository's HEAD, cloned (with the working tree's state as one more commit)."""
    repo = tmp_path / "repo"
    git(REPO, "clone", "--quiet", "--shared", str(REPO), str(repo))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty",
        "-m", "base")  # fmt: skip
    return repo


def inject_sleep(repo: Path) -> None:
    path = repo / "go" / "internal" / "fanout" / "service.go"
    text = path.read_text()
    anchor = "func (s *Service) catalog(w http.ResponseWriter, r *http.Request) int {\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + SLEEP, 1))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am",
        "slower")  # fmt: skip


def gate(
    repo: Path, base: str, head: str, out: Path, port_offset: int, min_effect: float = 0.05
) -> tuple[GateResult, Path]:
    options = GateOptions(
        base=base, head=head, patterns=["fanout"], implementations=["go"], overrides=SHORT,
        out_dir=out, port_offset=port_offset, min_effect=min_effect, parts=PARTS,
    )  # fmt: skip
    return run_gate(repo, options)


@shared_machine
def test_the_same_revision_on_both_sides_passes(
    clone: Path, tmp_path: Path, port_offset: int
) -> None:
    # How often the gate cries wolf is measured by the A/A benchmark (README), not here: a wide
    # minimum effect keeps a shared CI machine's drift from failing this test.
    result, out = gate(clone, "HEAD", "HEAD", tmp_path / "gate", port_offset, min_effect=0.25)
    assert result.problems == []
    assert [c.verdict for c in result.comparisons] == ["no change"] * 3
    assert (result.verdict, result.exit_code) == ("pass", 0), (out / "gate.md").read_text()
    assert (out / "base-fanout" / "report.md").is_file()
    # The worktrees are gone: the clone lists only itself.
    assert len(git(clone, "worktree", "list").splitlines()) == 1


@shared_machine
def test_an_injected_sleep_is_a_regression(clone: Path, tmp_path: Path, port_offset: int) -> None:
    inject_sleep(clone)
    result, out = gate(clone, "HEAD~1", "HEAD", tmp_path / "gate", port_offset)
    verdicts = {c.metric: c.verdict for c in result.comparisons}
    assert verdicts["p50"] == "regression", (out / "gate.md").read_text()
    assert (result.verdict, result.exit_code) == ("regression", 1)
    p50 = next(c for c in result.comparisons if c.metric == "p50")
    assert p50.change is not None
    assert p50.change > 1.0  # ~8 ms → ~28 ms
    assert "❌ **Regression.**" in (out / "gate.md").read_text()
