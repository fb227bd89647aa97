"""The notebooks run as scripts over stored results, so they never rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.models import RunResult
from bench.store import save_run

REPO = Path(__file__).resolve().parents[2]


def test_runs_overview_runs_over_stored_results(tmp_path: Path, sample_run: RunResult) -> None:
    save_run(sample_run, tmp_path / "runs" / "r1")
    done = subprocess.run(
        [sys.executable, str(REPO / "notebooks" / "runs_overview.py"),
         "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 measurements in 1 runs" in done.stdout
    assert (tmp_path / "out" / "runs_overview.png").stat().st_size > 1000
