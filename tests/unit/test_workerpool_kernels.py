"""The worker-pool kernels against every case of kernel_vectors.json, and check()'s errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from systems.workerpool.kernels import MAX_ROUNDS, MAX_SEED, MAX_SIZE, check, run_task

VECTORS = Path(__file__).parents[2] / "systems" / "workerpool" / "kernel_vectors.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text())["cases"]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['kernel']}-{c['seed']}-{c['rounds']}-{c['size']}" for c in CASES]
)
def test_run_task_matches_vector(case: dict[str, Any]) -> None:
    output = run_task(case["kernel"], case["seed"], case["rounds"], case["size"])
    assert output == case["output"]


def test_vectors_cover_both_kernels() -> None:
    assert {c["kernel"] for c in CASES} == {"spin", "hash"}


@pytest.mark.parametrize(
    ("kernel", "rounds", "size", "seed"),
    [
        ("spin", 0, 0, 0),
        ("spin", MAX_ROUNDS, 12345, MAX_SEED),
        ("hash", 0, 8, 0),
        ("hash", 1, MAX_SIZE, MAX_SEED),
    ],
)
def test_check_accepts_the_limits(kernel: str, rounds: int, size: int, seed: int) -> None:
    check(kernel, rounds, size, seed)


@pytest.mark.parametrize(
    ("kernel", "rounds", "size", "seed", "field"),
    [
        ("sleep", 1, 8, 0, "kernel"),
        ("SPIN", 1, 8, 0, "kernel"),
        ("spin", -1, 0, 0, "rounds"),
        ("spin", MAX_ROUNDS + 1, 0, 0, "rounds"),
        ("spin", True, 0, 0, "rounds"),
        ("spin", 1, 0, -1, "seed"),
        ("spin", 1, 0, MAX_SEED + 1, "seed"),
        ("hash", 1, 0, 0, "size"),
        ("hash", 1, -8, 0, "size"),
        ("hash", 1, 12, 0, "size"),
        ("hash", 1, MAX_SIZE + 8, 0, "size"),
    ],
)
def test_check_names_the_invalid_field(
    kernel: str, rounds: int, size: int, seed: int, field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field} "):
        check(kernel, rounds, size, seed)


def test_run_task_checks_before_running() -> None:
    with pytest.raises(ValueError, match=r"^size "):
        run_task("hash", 0, 1, 7)
