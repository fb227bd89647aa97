"""`python -m bench.launch.watchdog RECORD`: reap the harness's processes when the harness dies.

Started by `bench.launch.reaper.Registry` in its own session, with a pipe from the harness as
standard input. It waits for end-of-file — the harness closed the pipe on a clean exit, or the
kernel did when the harness died (kill -9 included) — then, if the record is still there, stops
every process group it names (`reaper.reap`).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from bench.launch.reaper import reap


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.launch.watchdog RECORD", file=sys.stderr)
        return 2
    # The harness's interrupts are the harness's: this process waits for the pipe alone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    record = Path(argv[0])
    if record.exists():
        reap(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
