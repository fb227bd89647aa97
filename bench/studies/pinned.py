"""Running a study's commands pinned to the study's CPUs, one line of error when they fail."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.launch.supervisor import run_owned


class CommandError(RuntimeError):
    """A command that failed or timed out; the message is one line."""


@dataclass(frozen=True, kw_only=True)
class Pinned:
    """Commands run under `taskset` on `cpus`, with the repository root on PYTHONPATH."""

    root: Path
    cpus: Sequence[int]

    def command(self, command: Sequence[str]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, self.cpus)), *command]

    def run(
        self,
        command: Sequence[str],
        cwd: Path,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Its standard output; CommandError with the tail of its output when it fails."""
        try:
            done = run_owned(
                self.command(command),
                cwd=cwd,
                timeout_s=timeout_s,
                env={**os.environ, "PYTHONPATH": str(self.root), **(env or {})},
            )
        except subprocess.TimeoutExpired:
            raise CommandError(f"{command[0]}: no answer in {timeout_s:.0f} s") from None
        except OSError as e:
            raise CommandError(f"{command[0]}: cannot start: {e.strerror}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise CommandError(f"exit {done.returncode}: {' / '.join(tail)}")
        return done.stdout
