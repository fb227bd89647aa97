"""The `soak` subcommand's flags, light to import: `patternbench --help` and a bad flag answer
before the campaign's modules (the catalog, pydantic, rich) are loaded.

Exit status: 0 when every count is zero, 1 when one is not (or no fault fired at all), 2 on bad
flags.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from bench.params import parse_duration

P = TypeVar("P", bound=argparse.ArgumentParser)

if TYPE_CHECKING:
    from bench.run import Parts

FaultKind = Literal[
    "harness-sigint", "harness-sigterm", "harness-sigkill", "system-sigkill", "support-sigkill"
]
#: The order of the round-robin: the four main kinds first, so `--runs 4` injects each of them.
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "harness-sigint",
    "harness-sigkill",
    "system-sigkill",
    "support-sigkill",
    "harness-sigterm",
)
#: Ports of the first run go up by this much: below the ephemeral ports (32768 and up) and below
#: the other tests' random offsets (20000 and up).
PORT_OFFSET = 12_000


def parse_kinds(text: str) -> list[FaultKind]:
    """`--faults harness-sigint,system-sigkill`: known kinds, in the order given."""
    chosen: list[FaultKind] = []
    for word in (w.strip() for w in text.split(",")):
        match = next((k for k in FAULT_KINDS if k == word), None)
        if match is None:
            raise ValueError(f"no fault kind {word!r} (known: {', '.join(FAULT_KINDS)})")
        chosen.append(match)
    return chosen


def _kinds(text: str) -> list[FaultKind]:
    try:
        return parse_kinds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _minutes(text: str) -> float:
    """Minutes as a bare number (`10`), or a duration with its unit (`90s`, `2m`)."""
    try:
        bare = text.strip().replace(".", "", 1).isdigit()
        return float(text) if bare else parse_duration(text) / 60
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(low: float, *, whole: bool = False, above: bool = False) -> Callable[[str], float]:
    """A finite number at least `low` (above it with `above`), a whole one with `whole`."""

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if whole else float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (above and value == low):
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(
                f"expected {kind} {'above' if above else 'of at least'} {low:g}, not {text!r}"
            )
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction[P]) -> None:
    """Add the `soak` subcommand (its function: `cmd_soak`)."""
    p = subparsers.add_parser(
        "soak",
        help="inject faults into short runs and count orphans, held ports, corrupt files, "
        "broken trials called valid, tracebacks and bad exit statuses",
        description="Exit status: 0 every count zero, 1 something found, 2 bad flags.",
    )
    p.add_argument("--runs", type=_number(1, whole=True), default=40,
                   help="runs, one fault each (default 40)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="draws the faults' moments (default 0)")
    p.add_argument("--out", help="folder for soak.json and the runs (default results/soak/<time>)")
    p.add_argument("--budget", type=_minutes, metavar="MINUTES",
                   help="start no run after this many minutes (e.g. 10, 90s, 2m)")  # fmt: skip
    p.add_argument("--pattern", help="the pattern to run (default: the first with a support "
                   "process started with each trial: every fault has a target)")  # fmt: skip
    p.add_argument("--port-offset", type=_number(0, whole=True), default=PORT_OFFSET,
                   metavar="BASE", help=f"the first run's ports shifted by BASE, later runs' "
                   f"above (default {PORT_OFFSET})")  # fmt: skip
    p.add_argument("--faults", type=_kinds, default=list(FAULT_KINDS), metavar="KINDS",
                   help="comma-separated fault kinds, taken round-robin (default: all, "
                   f"{','.join(FAULT_KINDS)})")  # fmt: skip
    p.add_argument("--settle", type=_number(0), default=10.0, metavar="SECONDS",
                   help="how long a run's processes and ports get to go (default 10)")  # fmt: skip
    p.add_argument("--run-timeout", type=_number(0, above=True), default=180.0,
                   metavar="SECONDS", help="a run still going after this is stopped "
                   "(default 180)")  # fmt: skip
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter of the runs")  # fmt: skip
    p.set_defaults(func=cmd_soak)


def cmd_soak(args: argparse.Namespace, parts: Parts) -> int:
    """Run the campaign (bench/soak/command.py, imported only now)."""
    from bench.soak.command import run_soak

    return run_soak(args, parts)
