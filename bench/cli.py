"""`patternbench` (also `python -m bench`): the command line, and the one place parts are wired.

The kinds of load engine, probe and study are the dict literals of `PARTS` below: a new kind is
one module and one line here; a new pattern is data and code under systems/ and touches nothing
in bench/.

Exit status: 0 when every implementation was measured, 1 when one failed (build, start-up, test
vectors, crash), 2 on bad input (an unknown pattern or parameter, a malformed system.toml or
result file) — always with one line saying what and where.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import commands
from bench.catalog import CatalogError
from bench.engines.loadgen import Loadgen
from bench.engines.locust import Locust
from bench.engines.spec import LoadError
from bench.gate import compare, selfcheck
from bench.gate.gate import GateError
from bench.gate.history import HistoryError
from bench.launch.cpusets import CpuSetError
from bench.launch.grpc_probe import GrpcProbe
from bench.launch.probes import HttpProbe, TcpProbe
from bench.params import parse_duration
from bench.run import Parts
from bench.store import ResultFileError
from bench.studies.pools import PoolStudy

PARTS = Parts(
    engines={"loadgen": Loadgen(), "locust": Locust()},
    probes={"http": HttpProbe(), "grpc": GrpcProbe(), "tcp": TcpProbe()},
    studies={"pools": PoolStudy()},
)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
        p.add_argument("--alpha", type=_fraction, default=compare.ALPHA,
                       help="false discovery rate over the comparisons (default 0.05)")  # fmt: skip
    p.add_argument("--min-effect", type=_percent, default=100 * compare.MIN_EFFECT, metavar="PCT",
                   help="smallest change worth calling, %% (default 5)")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="patternbench",
        description="Verify and measure service patterns in Python and Go, and report on them.",
        epilog="Exit status: 0 all measured, 1 an implementation failed, 2 bad input.",
    )
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list patterns and their implementations").set_defaults(
        func=commands.cmd_list
    )

    run = sub.add_parser("run", help="verify and measure patterns, write run.json and a report")
    run.add_argument("patterns", nargs="*", help="patterns to run (default: all)")
    run.add_argument("--all", action="store_true", help="run every pattern")
    run.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter"
    )
    run.add_argument("--profile", default="default", help="parameter profile (default, quick, …)")
    # Shorthands for the load parameters every pattern has (`--rates X` is `--param rates=X`).
    for flag, param, text in (
        ("--engine", "engine", "loadgen (Go, open-loop) or locust"),
        ("--load-model", "load_model", "open-loop or closed-loop (locust)"),
        ("--rate", "rate", "open-loop target req/s (the search's start with --find-max)"),
        ("--rates", "rates", "a sweep of target rates, e.g. 500,1000,2000"),
        ("--arrival", "arrival", "constant or poisson"),
        ("--trials", "trials", "trials per implementation and rate, interleaved"),
        ("--slo", "slo", 'e.g. "p99<=50ms,errors<=0.1%%"'),
    ):
        run.add_argument(flag, dest=f"load_{param}", metavar=param.upper(), help=text)
    run.add_argument(
        "--find-max", action="store_true", help="search the highest rate meeting the SLO"
    )
    run.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")
    run.add_argument("--run-id", help="name of the run folder (default: time and pattern)")
    run.add_argument(
        "--port-offset", type=int, default=0, help="add N to every port (to run beside another)"
    )
    run.add_argument("--cpus-system", help="CPU list for the system under test, e.g. 1 or 2-3")
    run.add_argument("--cpus-loadgen", help="CPU list for the load generator, e.g. 0")
    run.set_defaults(func=commands.cmd_run)

    load = sub.add_parser(
        "load",
        help="load any HTTP URL open-loop (or closed-loop) and print HDR percentiles",
        description="Exit status: 0 when the load generator kept up, 1 when it was the limit.",
    )
    load.add_argument("url", help="http://host:port/path to GET, or grpc://host:port (loadgen)")
    load.add_argument("--rate", type=float, default=1000.0, help="open-loop req/s (default 1000)")
    load.add_argument("--duration", type=_duration, default=10.0,
                      help="measured time: 500ms, 30s, 2m or seconds (default 10s)")  # fmt: skip
    load.add_argument("--warmup", type=_duration, default=2.0,
                      help="time not measured first (default 2s)")  # fmt: skip
    load.add_argument("--engine", choices=tuple(PARTS.engines), default="loadgen")
    load.add_argument("--grpc-method", help="grpc:// URLs: /package.Service/Method to call")
    load.add_argument("--grpc-request", help="grpc:// URLs: the request as JSON (default {})")
    load.add_argument("--proto-module", action="append", default=[], metavar="MODULE",
                      help="grpc:// URLs: a generated module defining the method")  # fmt: skip
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant")
    load.add_argument("--closed-loop", action="store_true", help="Locust users instead of a rate")
    load.add_argument("--users", type=int, default=10, help="closed-loop users (default 10)")
    load.add_argument("--max-in-flight", type=int, default=1000, help="open-loop concurrency cap")
    load.add_argument("--cpus", help="CPU list for the generator (default: lower half)")
    load.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    load.set_defaults(func=commands.cmd_load)

    sub.add_parser(
        "engines", help="measure the load engines' headroom against wrk and plain Locust"
    ).set_defaults(func=commands.cmd_engines)

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
    cmp.set_defaults(func=commands.cmd_compare)

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
    gat.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    gat.set_defaults(func=commands.cmd_gate)

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
    his.set_defaults(func=commands.cmd_history)

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
    sel.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    sel.set_defaults(func=commands.cmd_selfcheck)

    rep = sub.add_parser("report", help="render report.md and report.html for a stored run")
    rep.add_argument("run", help="run id, run folder or run.json")
    rep.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")
    rep.set_defaults(func=commands.cmd_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.func(args, PARTS)
    except (CatalogError, CpuSetError, ResultFileError, LookupError, LoadError, GateError,
            HistoryError, selfcheck.SelfCheckError) as e:  # fmt: skip
        print(f"patternbench: {e}", file=sys.stderr)
        return commands.EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "patternbench: interrupted; every process it started has been stopped", file=sys.stderr
        )
        return 130
    return status
