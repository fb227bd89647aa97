"""`patternbench soak --runs 4`: one of each main fault (SIGINT and SIGKILL to the harness,
SIGKILL to the system under test, SIGKILL to a support) injected into real short runs, and
nothing may be left behind: no orphan, no bound port, no corrupt file, no broken trial called
valid, no traceback, no exit status that does not fit."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.soak import add_parser
from bench.soak.models import SoakResult

pytestmark = pytest.mark.integration


@pytest.mark.timeout(420)
def test_four_faults_leave_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = argparse.ArgumentParser(prog="patternbench")
    add_parser(top.add_subparsers(dest="command", required=True))
    # Below the ephemeral ports, and away from the other tests' offsets (20000 and up).
    base = random.randrange(12_000, 13_500, 10)
    args = top.parse_args(["soak", "--runs", "4", "--seed", "1", "--out", str(tmp_path),
                           "--port-offset", str(base), "--budget", "3"])  # fmt: skip
    code = args.func(args, PARTS)
    printed = capsys.readouterr()
    result = SoakResult.model_validate_json((tmp_path / "soak.json").read_text(encoding="utf-8"))
    assert [r.fault.kind for r in result.runs] == [
        "harness-sigint", "harness-sigkill", "system-sigkill", "support-sigkill"
    ], result.stopped  # fmt: skip
    assert [r.injection.note for r in result.runs if not r.injection.fired] == []
    assert result.totals.problems() == 0, printed.out
    assert code == 0
