"""Instruction counts of the in-process pyperf scenarios, for the gate (as CodSpeed does).

Wall time of a CPU-bound kernel spreads by several percent on a shared machine; the number of
instructions it executes, counted by valgrind's callgrind, repeats to a few instructions in
hundreds of millions. The gate's `--instructions` mode therefore compares instruction counts for
the in-process scenarios, where a 1-2% change is then visible; anything that crosses a socket
keeps wall-time metrics.

A count is the difference between a run of the scenario with 3 batches and one with 1 batch, in
one Python process each (`--inline-loops`, with the arguments of the pool study's inline
implementation: the kernel on the calling thread), divided by 2: interpreter start-up and imports
cancel out, leaving the instructions of one batch.
`PYTHONHASHSEED=0` keeps hashing, and so the interpreter's own work, the same from run to run.
Each count is taken `REPEATS` times; their spread is the noise the gate reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.studies.pools_plan import PoolImplementation, PoolSpec

REPEATS: Final = 2
#: The scenarios counted: kernel, rounds, size, tasks per batch (small: callgrind runs ~50× slower).
SCENARIOS: Final = (("spin", 5000, 0, 10), ("hash", 2000, 64, 10))
#: Relative change of an instruction count that the gate calls (counts repeat to ~1e-8).
MIN_EFFECT: Final = 0.01


class InstructionsError(Exception):
    """Counting could not be done (no valgrind, a scenario that fails)."""


def inline_implementation(spec: PoolSpec) -> PoolImplementation:
    """The implementation counted: the table's inline one on pyperf (the kernel alone)."""
    for impl in spec.implementations:
        if impl.pool == "inline" and impl.runner == "pyperf" and not impl.free_threaded:
            return impl
    raise InstructionsError("the pool study has no inline implementation run by pyperf")


@dataclass(frozen=True)
class Count:
    scenario: str
    per_batch: list[float]  # one figure per repeat


def available() -> bool:
    return shutil.which("valgrind") is not None


def callgrind_total(command: Sequence[str], cwd: Path) -> int:
    """Instructions executed by a command (and not its children), from callgrind's summary."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(cwd)},
            check=False,
        )
        if done.returncode != 0:
            tail = " / ".join(done.stderr.strip().splitlines()[-3:])
            raise InstructionsError(f"{command[1]}: exit {done.returncode}: {tail}")
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise InstructionsError(f"{command[1]}: callgrind wrote no summary")


def count(
    root: Path,
    spec: PoolSpec,
    python: str,
    scenarios: Sequence[tuple[str, int, int, int]] = SCENARIOS,
    repeats: int = REPEATS,
) -> list[Count]:
    """Instructions per batch of every scenario, for the revision checked out at `root`."""
    if not available():
        raise InstructionsError("valgrind is not installed (apt-get install valgrind)")
    if spec.pyperf is None:
        raise InstructionsError("the pool study names no pyperf script")
    inline = inline_implementation(spec)
    script = [python, str(root / spec.pyperf.script), *spec.pyperf.args, *inline.args]
    found = []
    for kernel, rounds, size, tasks in scenarios:
        base = [*script, "--kernel", kernel, "--rounds", str(rounds), "--size", str(size),
                "--tasks", str(tasks)]  # fmt: skip
        figures = []
        for _ in range(repeats):
            one = callgrind_total([*base, "--inline-loops", "1"], root)
            three = callgrind_total([*base, "--inline-loops", "3"], root)
            figures.append((three - one) / 2)
        name = f"{kernel} {rounds} rounds" + (f" × {size} B" if size else "") + f", {tasks} tasks"
        found.append(Count(scenario=name, per_batch=figures))
    return found
