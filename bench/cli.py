"""`patternbench` (also `python -m bench`): the command line, and the one place parts are wired.

The kinds of load engine, probe and study are the dict literals of `parts()` below (`PARTS`): a
new kind is one module and one line here; a new pattern is data and code under systems/ and
touches nothing in bench/.

The arguments are checked before anything heavy is imported (`--help` and a bad flag answer at
once, each bad flag in one line naming it); the commands and the parts' modules are imported once
they are good.

Exit status: 0 when every implementation was measured, 1 when one failed (build, start-up, test
vectors, crash), 2 on bad input (an unknown pattern or parameter, a malformed system.toml or
result file) — always with one line saying what and where.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bench import soak
from bench.engines import target
from bench.gate.decision import ALPHA, MIN_EFFECT
from bench.launch.cpusets import CpuSetError, usable
from bench.params import ParamError, parse_duration, rate_list
from bench.stats.slo import Slo

if TYPE_CHECKING:
    from bench.run import Parts

#: The highest --port-offset that leaves the lowest port a pattern may use (1024) a port.
MAX_PORT_OFFSET = 65535 - 1024


@cache
def parts() -> Parts:
    """The kinds of engine, probe and study, built on first use (also as `bench.cli.PARTS`)."""
    from bench.engines.loadgen import Loadgen
    from bench.engines.locust import Locust
    from bench.launch.grpc_probe import GrpcProbe
    from bench.launch.probes import HttpProbe, TcpProbe
    from bench.run import Parts
    from bench.studies.ceiling import CeilingStudy
    from bench.studies.codec import CodecStudy
    from bench.studies.fault import FaultStudy
    from bench.studies.pools import PoolStudy

    return Parts(
        engines={"loadgen": Loadgen(), "locust": Locust()},
        probes={"http": HttpProbe(), "grpc": GrpcProbe(), "tcp": TcpProbe()},
        studies={
            "pools": PoolStudy(),
            "codec": CodecStudy(),
            "ceiling": CeilingStudy(),
            "fault": FaultStudy(),
        },
    )


def __getattr__(name: str) -> Parts:
    """`from bench.cli import PARTS`: the parts, built when first asked for (PEP 562)."""
    if name == "PARTS":
        return parts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Parser(argparse.ArgumentParser):
    """Bad input is one line naming the flag, without argparse's usage block before it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _real(what: str) -> Callable[[str], float]:
    """A finite number above zero (no nan, no inf)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return value

    return parse


def _whole(what: str, low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """A whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return value

    return parse


def _as_text(parse: Callable[[str], object]) -> Callable[[str], str]:
    """The same check, keeping the text: `run`'s shorthands are `--param` values."""

    def check(text: str) -> str:
        parse(text)
        return text

    return check


def _rates(text: str) -> list[float]:
    try:
        return rate_list(text)
    except ParamError:
        raise argparse.ArgumentTypeError(
            f"expected positive rates like 500,1000,2000, not {text!r}"
        ) from None


def _slo(text: str) -> Slo:
    try:
        return Slo.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _duration(*, zero: bool) -> Callable[[str], float]:
    """500ms, 30s, 2m or seconds; above zero unless `zero` (a warm-up may be none)."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if seconds == 0 and not zero:
            raise argparse.ArgumentTypeError(f"expected a duration above zero, not {text!r}")
        return seconds

    return parse


def _cpus(text: str) -> list[int]:
    try:
        return usable(text)
    except CpuSetError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _url(text: str) -> str:
    try:
        target.split(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, not {text!r}")
    return value


def _out_file(text: str) -> Path:
    """A file to write: its folder must exist (a typo is not a folder tree to create)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {path.parent}")
    return path


def _minutes(text: str) -> float:
    """--budget: minutes as a bare number (`10`), or a duration with its unit (`90s`, `2m`)."""
    try:
        return (
            float(text) if text.strip().replace(".", "", 1).isdigit() else parse_duration(text) / 60
        )
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 100.0:
        raise argparse.ArgumentTypeError(f"must be a percentage in 0..100, not {text}")
    return value


def _decision_args(p: argparse.ArgumentParser, *, alpha: bool = True) -> None:
    """The gate's decision knobs, the same wherever a decision is made."""
    if alpha:
        p.add_argument(
            "--alpha", type=_fraction, default=ALPHA,
            help=f"false discovery rate over the comparisons (default {ALPHA:g})",
        )  # fmt: skip
    p.add_argument(
        "--min-effect", type=_percent, default=100 * MIN_EFFECT, metavar="PCT",
        help=f"smallest change worth calling, %% (default {100 * MIN_EFFECT:g})",
    )  # fmt: skip


def _port_offset(p: argparse.ArgumentParser) -> None:
    offset = _whole(f"an offset from 0 to {MAX_PORT_OFFSET}", 0, MAX_PORT_OFFSET)
    p.add_argument(
        "--port-offset", type=offset, default=0, help="add N to every port (to run beside another)"
    )


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="patternbench",
        description="Verify and measure service patterns in Python and Go, and report on them.",
        epilog="Exit status: 0 all measured, 1 an implementation failed, 2 bad input.",
    )
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list patterns and their implementations")

    run = sub.add_parser("run", help="verify and measure patterns, write run.json and a report")
    run.add_argument("patterns", nargs="*", help="patterns to run (default: all)")
    run.add_argument("--all", action="store_true", help="run every pattern")
    run.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter"
    )
    run.add_argument("--profile", default="default", help="parameter profile (default, quick, …)")
    # Shorthands for the load parameters every pattern has (`--rates X` is `--param rates=X`),
    # checked here so that a bad one is named as typed.
    rate = _real("a positive number of requests/s")
    trials = _whole("a whole number of trials above zero")
    for flag, param, check, text in (
        ("--engine", "engine", str, "loadgen (Go, open-loop) or locust"),
        ("--load-model", "load_model", str, "open-loop or closed-loop (locust)"),
        ("--rate", "rate", rate, "open-loop target req/s (the search's start with --find-max)"),
        ("--rates", "rates", _rates, "a sweep of target rates, e.g. 500,1000,2000"),
        ("--arrival", "arrival", str, "constant or poisson"),
        ("--trials", "trials", trials, "trials per implementation and rate, interleaved"),
        ("--slo", "slo", _slo, 'e.g. "p99<=50ms,errors<=0.1%%"'),
    ):
        run.add_argument(flag, dest=f"load_{param}", type=_as_text(check), metavar=param.upper(),
                         help=text)  # fmt: skip
    run.add_argument(
        "--find-max", action="store_true", help="search the highest rate meeting the SLO"
    )
    run.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")
    run.add_argument("--run-id", help="name of the run folder (default: time and pattern)")
    _port_offset(run)
    run.add_argument("--cpus-system", type=_cpus,
                     help="CPU list for the system under test, e.g. 1 or 2-3")  # fmt: skip
    run.add_argument("--cpus-loadgen", type=_cpus, help="CPU list for the load generator, e.g. 0")

    load = sub.add_parser(
        "load",
        help="load any HTTP URL open-loop (or closed-loop) and print HDR percentiles",
        description="Exit status: 0 when the load generator kept up, 1 when it was the limit.",
    )
    load.add_argument(
        "url", type=_url, help="http://host:port/path to GET, or grpc://host:port (loadgen)"
    )
    load.add_argument("--rate", type=_real("a positive number of requests/s"), default=1000.0,
                      help="open-loop req/s (default 1000)")  # fmt: skip
    load.add_argument("--duration", type=_duration(zero=False), default=10.0,
                      help="measured time: 500ms, 30s, 2m or seconds (default 10s)")  # fmt: skip
    load.add_argument("--warmup", type=_duration(zero=True), default=2.0,
                      help="time not measured first (default 2s)")  # fmt: skip
    load.add_argument("--engine", default="loadgen", help="loadgen (default) or locust")
    load.add_argument("--grpc-method", help="grpc:// URLs: /package.Service/Method to call")
    load.add_argument("--grpc-request", type=_json_object,
                      help="grpc:// URLs: the request as JSON (default {})")  # fmt: skip
    load.add_argument("--proto-module", action="append", default=[], metavar="MODULE",
                      help="grpc:// URLs: a generated module defining the method")  # fmt: skip
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant")
    load.add_argument("--closed-loop", action="store_true", help="Locust users instead of a rate")
    load.add_argument("--users", type=_whole("a whole number of users above zero"), default=10,
                      help="closed-loop users (default 10)")  # fmt: skip
    load.add_argument("--max-in-flight", type=_whole("a whole number above zero"), default=1000,
                      help="open-loop concurrency cap (default 1000)")  # fmt: skip
    load.add_argument("--cpus", type=_cpus, help="CPU list for the generator (default: lower half)")
    load.add_argument("--json", type=_out_file, metavar="FILE", help="write the summary as JSON")

    eng = sub.add_parser(
        "engines", help="measure the load engines' headroom against wrk, plain Locust and ghz"
    )
    eng.add_argument("--grpc-target", metavar="PATTERN/IMPL",
                     help="the gRPC implementation loadgen's gRPC mode and ghz are measured "
                          "against (its own call); without it that check is skipped")  # fmt: skip

    cmp = sub.add_parser(
        "compare",
        help="decide whether a stored run (head) regressed against another (base)",
        description="Exit status: 0 no regression, 1 regression, 2 undecided or bad input.",
    )
    cmp.add_argument("base", help="run id, run folder or run.json of the base")
    cmp.add_argument("head", help="run id, run folder or run.json of the head")
    _decision_args(cmp)
    cmp.add_argument("--out", help="folder for gate.json and gate.md (default: beside head)")
    cmp.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")

    gat = sub.add_parser(
        "gate",
        help="measure two git revisions interleaved and decide whether head regressed",
        description="Exit status: 0 no regression, 1 regression, 2 undecided or could not run.",
    )
    gat.add_argument("--base", required=True, help="git ref of the base (e.g. the merge base)")
    gat.add_argument("--head", default="HEAD", help="git ref of the head (default HEAD)")
    gat.add_argument("--patterns", help="comma-separated patterns (default: all on both sides)")
    gat.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    gat.add_argument("--budget", type=_minutes, metavar="MINUTES",
                     help="cap the trials so the measurement fits this many minutes")  # fmt: skip
    _decision_args(gat)
    gat.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the gate profile")  # fmt: skip
    gat.add_argument("--instructions", action="store_true",
                     help="also compare instruction counts (callgrind) of the in-process "
                     "scenarios; a 1%% change is called")  # fmt: skip
    gat.add_argument("--out", help="folder for gate.json, gate.md and the runs")
    _port_offset(gat)

    his = sub.add_parser(
        "history",
        help="append a run to the results history, or draw the history with its change points",
    )
    his.add_argument("action", nargs="?", choices=("show", "append"), default="show",
                     help="show (default): history.md and plots; append: add RUN")  # fmt: skip
    his.add_argument("run", nargs="?", help="append: run id, run folder or run.json")
    his.add_argument(
        "--history", help="the JSON-lines file (default results/history/history.jsonl)"
    )
    his.add_argument("--out", help="show: folder for history.md and the plots")
    his.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")

    sel = sub.add_parser(
        "selfcheck",
        help="measure the gate: false positives (A/A) and detections of an injected delay (A/B)",
    )
    sel.add_argument("--pattern", help="the pattern to slow down (default: the first with a "
                     "[selfcheck] table in its system.toml)")  # fmt: skip
    sel.add_argument("--impl", help="its implementation to slow down (default: the table's)")
    sel.add_argument("--file", help="the source file to slow down, relative to the repository")
    sel.add_argument("--after", help="the line after which the busy wait goes")
    sel.add_argument("--code", help="the busy wait, in the file's language; {delay_us} is replaced")
    sel.add_argument("--aa", type=int, default=20, help="A/A gates (default 20)")
    sel.add_argument("--ab", type=int, default=20, help="A/B gates (default 20)")
    sel.add_argument("--delay-us", type=int, default=750,
                     help="busy wait per request, µs (default 750: ≈9%% of p50)")  # fmt: skip
    _decision_args(sel, alpha=False)
    sel.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the gate profile")  # fmt: skip
    sel.add_argument("--out", help="folder for selfcheck.json, selfcheck.md and the gates")
    _port_offset(sel)

    rep = sub.add_parser("report", help="render report.md and report.html for a stored run")
    rep.add_argument("run", help="run id, run folder or run.json")
    rep.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")

    soak.add_parser(sub)
    return top


def _raise_on_interrupt() -> None:
    """From here on Ctrl-C raises KeyboardInterrupt, so that whatever the command starts is stopped
    (while Python imports, the entry point `bench.__main__` leaves at once instead)."""
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.default_int_handler):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from bench import commands  # the commands' libraries: only once the arguments are good

        found = parts()
        _raise_on_interrupt()
        return commands.dispatch(args, found)
    except KeyboardInterrupt:
        print(
            "patternbench: interrupted; every process it started has been stopped", file=sys.stderr
        )
        return 130
