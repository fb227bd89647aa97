"""`python -m bench` is the `patternbench` command; the console script calls `main` here too.

Ctrl-C at any moment ends with one line and exit status 130. While Python imports the harness, and
once the command has returned, nothing the harness started is running: Ctrl-C then leaves at
once. While the command runs (`bench.cli.main`), Ctrl-C raises KeyboardInterrupt, which stops
every process the command started before the one line is written.
"""

import os
import signal
from types import FrameType

INTERRUPTED = b"patternbench: interrupted\n"


def _leave(signum: int, frame: FrameType | None) -> None:
    os.write(2, INTERRUPTED)
    os._exit(130)


def main() -> int:
    # Not when started with Ctrl-C ignored (a background job of a script): it stays ignored.
    quick = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if quick:
        signal.signal(signal.SIGINT, _leave)
    from bench.cli import main as command

    status = command()
    if quick:
        signal.signal(signal.SIGINT, _leave)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
