"""What a pattern's command prints, run once: the inputs too large or too secret to write in a
system.toml (a tensor's bytes, a signed token), made by the pattern's own tool when needed.

The load engines' `body_command` / `grpc_request_command` / `header_commands` and the HTTP probe's
`header_commands` run through here; each command runs once per harness process and its output is
kept, so every trial of a run sends the same bytes.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

#: How long such a command may take.
OUTPUT_TIMEOUT_S = 60.0


class OutputError(Exception):
    """The command could not give its output; the message names the table's field."""


@functools.cache
def command_output(command: tuple[str, ...], root: Path, what: str = "body_command") -> str:
    """What `command` prints, run from `root` with it on PYTHONPATH (a pattern's module may be
    the command); OutputError naming the table's field (`what`) with its last line when it
    fails."""
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=OUTPUT_TIMEOUT_S,
            env={**os.environ, "PYTHONPATH": str(root)}, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise OutputError(f"{what}: no output in {OUTPUT_TIMEOUT_S:g} s") from None
    except OSError as e:
        raise OutputError(f"{what}: cannot start {command[0]}: {e.strerror}") from None
    if done.returncode != 0 or not done.stdout:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OutputError(f"{what}: exit {done.returncode}: {tail}")
    return done.stdout


def header_values(commands: dict[str, list[str]], root: Path, what: str) -> dict[str, str]:
    """Each header's value, what its command prints (stripped): one line."""
    values = {}
    for name, command in commands.items():
        value = command_output(tuple(command), root, f"{what}.{name}").strip()
        if "\n" in value or "\r" in value:
            raise OutputError(f"{what}.{name}: the output is more than one line")
        values[name] = value
    return values
