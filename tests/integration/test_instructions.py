"""Instruction counts under callgrind: they repeat, and one extra operation per round shows."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bench.gate.compare import decide_instructions
from bench.studies import instructions
from tests.integration.conftest import REPO
from tests.integration.test_workerpool_study import pool_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not instructions.available(), reason="valgrind is not installed"),
]

TINY = [("spin", 300, 0, 4)]


def copy_of_the_scenario(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for part in ("systems", "scenarios"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_counts_repeat_and_a_slower_kernel_is_called(tmp_path: Path) -> None:
    spec = pool_spec({"python-sync", "python-threads", "go"})
    assert instructions.inline_implementation(spec).name == "python-sync"
    base_root = copy_of_the_scenario(tmp_path / "base")
    (base_count,) = instructions.count(base_root, spec, sys.executable, TINY, repeats=2)
    first, second = base_count.per_batch
    assert first > 100_000  # 1,200 rounds of Python bytecode
    assert abs(first - second) / first < 1e-4
    same = decide_instructions("workerpool", "python-sync", base_count.scenario,
                               base_count.per_batch, [first], min_effect=0.01)  # fmt: skip
    assert same.verdict == "no change"

    head_root = copy_of_the_scenario(tmp_path / "head")
    kernels = head_root / "systems" / "workerpool" / "kernels.py"
    text = kernels.read_text()
    anchor = "        x ^= (x << 17) & _M\n"
    assert anchor in text
    kernels.write_text(text.replace(anchor, anchor + "        x ^= 0\n", 1))  # one more op a round
    (head_count,) = instructions.count(head_root, spec, sys.executable, TINY, repeats=1)
    slower = decide_instructions("workerpool", "python-sync", base_count.scenario,
                                 base_count.per_batch, head_count.per_batch,
                                 min_effect=0.01)  # fmt: skip
    assert slower.verdict == "regression"
    assert slower.change is not None
    assert 0.01 < slower.change < 0.5
