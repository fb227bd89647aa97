"""`patternbench` (also `python -m bench`): the command line, and the one place parts are wired.

Exit status: 0 when every implementation was measured, 1 when one failed (build, start-up, test
vectors, crash), 2 on bad input (an unknown pattern or parameter, a malformed system.toml or
result file) — always with one line saying what and where.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.catalog import CatalogError, Pattern, load_catalog
from bench.engines import check as engine_check
from bench.engines import url as load_url
from bench.engines.spec import LoadError
from bench.gate import compare, gate, gate_report, history, selfcheck
from bench.gate.gate import GateError
from bench.gate.gate_report import Side
from bench.gate.history import HistoryError
from bench.launch.cpusets import CpuSetError, parse_cpu_list, plan
from bench.models import RunResult
from bench.report import write as report
from bench.run import LOADGEN_BUILD, PatternRun, RunOptions, new_run_id
from bench.store import ResultFileError, load_run, resolve_run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

console = Console(stderr=True)


def _root() -> Path:
    """The repository: the folder holding systems/, found from here or the current folder."""
    env = os.environ.get("PATTERNBENCH_ROOT")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parent.parent]
    for folder in candidates:
        if (folder / "systems").is_dir() and (folder / "bench").is_dir():
            return folder.resolve()
    raise CatalogError(
        "cannot find the patternbench repository (a folder with systems/ and bench/)"
    )


class RichProgress:
    """Draws the runner's phases as one progress line per implementation."""

    def __init__(self, progress: Progress, pattern: str) -> None:
        self._progress = progress
        self._pattern = pattern
        self._tasks: dict[str, TaskID] = {}

    def _task(self, impl: str) -> TaskID:
        if impl not in self._tasks:
            self._tasks[impl] = self._progress.add_task(f"{self._pattern}/{impl}", total=None)
        return self._tasks[impl]

    def phase(self, impl: str, text: str, total_s: float | None = None) -> None:
        task = self._task(impl)
        description = f"{self._pattern}/{impl}: {text}"
        if total_s is None:
            self._progress.update(task, description=description)
        else:
            self._progress.update(task, description=description, total=total_s, completed=0)

    def advance(self, impl: str, done_s: float) -> None:
        self._progress.update(self._task(impl), completed=done_s)


def _params(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CatalogError(f"--param {pair}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def cmd_list(args: argparse.Namespace) -> int:
    catalog = load_catalog(_root())
    table = Table(title="patterns")
    for column in ("pattern", "implementation", "language", "port", "description"):
        table.add_column(column)
    for pattern in catalog.values():
        for name, impl in pattern.implementations.items():
            table.add_row(pattern.pattern, name, impl.language, str(impl.port), impl.description)
    Console().print(table)
    return EXIT_OK


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _print_summary(result: RunResult) -> None:
    """One line per implementation and rate: the medians a reader looks for first."""
    for impl in result.implementations:
        if impl.status != "ok":
            _say(f"  {impl.name:<16} {impl.status}: {impl.error}")
        for point in impl.points:
            at = f"{point.target_rps:>8,.0f} req/s" if point.target_rps else "closed-loop   "
            if not point.valid:
                _say(f"  {impl.name:<16} {at}  INVALID: the load generator was the limit")
                continue
            s = point.summary
            _say(
                f"  {impl.name:<16} {at}  served {s['throughput_rps'].median:>9,.0f} req/s  "
                f"p50 {s['p50'].median:.2f} ms  p99 {s['p99'].median:.2f} ms  "
                f"errors {100 * s['error_rate'].median:.2f}%"
            )
        if impl.knee_rps is not None:
            _say(f"  {impl.name:<16} knee: {impl.knee_rps:,.0f} req/s")
        if impl.search is not None:
            best = impl.search.best_rate
            _say(f"  {impl.name:<16} highest rate meeting the SLO: "
                 f"{f'{best:,.0f} req/s' if best is not None else 'none'}")  # fmt: skip


def _run_one(pattern: Pattern, options: RunOptions) -> int:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>5.1f}/{task.total} s"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        run = PatternRun(pattern, options, RichProgress(progress, pattern.pattern))
        result = run.execute()
    md, html = report.render(result, run.run_dir)
    _print_summary(result)
    console.print(
        f"result: {run.run_dir / 'run.json'}\nreport: {md}\n        {html}", soft_wrap=True
    )
    return EXIT_OK if all(i.status == "ok" for i in result.implementations) else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    root = _root()
    catalog = load_catalog(root)
    names = list(catalog) if args.all or not args.patterns else args.patterns
    for name in names:
        if name not in catalog:
            raise CatalogError(f"no pattern {name!r} (known: {', '.join(catalog)})")
    chosen_system = parse_cpu_list(args.cpus_system) if args.cpus_system else None
    chosen_loadgen = parse_cpu_list(args.cpus_loadgen) if args.cpus_loadgen else None
    status = EXIT_OK
    for name in names:
        cpusets = plan(
            sorted(os.sched_getaffinity(0)),
            chosen_system,
            chosen_loadgen,
            system_all=catalog[name].system_cpus == "all",
        )
        overrides = {
            key.removeprefix("load_"): value
            for key, value in vars(args).items()
            if key.startswith("load_") and value is not None
        }
        if args.find_max:
            overrides["find_max"] = "true"
        options = RunOptions(
            profile=args.profile,
            overrides={**overrides, **_params(args.param)},
            implementations=args.impl,
            cpusets=cpusets,
            runs_dir=Path(args.runs_dir) if args.runs_dir else root / "results" / "runs",
            run_id=args.run_id if len(names) == 1 else None,
            port_offset=args.port_offset,
        )
        status = max(status, _run_one(catalog[name], options))
    return status


def cmd_report(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir) if args.runs_dir else _root() / "results" / "runs"
    path = resolve_run(args.run, runs_dir)
    md, html = report.render(load_run(path), path.parent)
    console.print(f"report: {md}\n        {html}", soft_wrap=True)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir) if args.runs_dir else _root() / "results" / "runs"
    paths = [resolve_run(ref, runs_dir) for ref in (args.base, args.head)]
    base, head = (load_run(path) for path in paths)
    samples, problems = compare.pair_samples(base, head)
    comparisons = compare.decide(samples, alpha=args.alpha, min_effect=args.min_effect / 100)
    sides = [
        Side(label=run.run_id, git_sha=run.environment.git_sha, runs=[str(path.parent)])
        for run, path in zip((base, head), paths, strict=True)
    ]
    result = gate_report.make_result(
        sides[0], sides[1], comparisons, problems, alpha=args.alpha,
        min_effect=args.min_effect / 100,
    )  # fmt: skip
    out = Path(args.out) if args.out else paths[1].parent / f"compare-{base.run_id}"
    md = gate_report.save(result, out)
    print(md.read_text(encoding="utf-8"))  # stdout: e.g. >> $GITHUB_STEP_SUMMARY
    console.print(f"gate: {out / 'gate.json'}\n      {md}", soft_wrap=True)
    return result.exit_code


def cmd_gate(args: argparse.Namespace) -> int:
    root = _root()
    options = gate.GateOptions(
        base=args.base,
        head=args.head,
        patterns=args.patterns.split(",") if args.patterns else None,
        implementations=args.impl,
        budget_min=args.budget,
        alpha=args.alpha,
        min_effect=args.min_effect / 100,
        out_dir=Path(args.out) if args.out else None,
        instructions=args.instructions,
        overrides=_params(args.param),
        port_offset=args.port_offset,
    )
    result, out = gate.run_gate(root, options, say=lambda line: console.print(f"gate: {line}"))
    print((out / "gate.md").read_text(encoding="utf-8"))  # stdout: e.g. >> $GITHUB_STEP_SUMMARY
    console.print(f"gate: {out / 'gate.json'}\n      {out / 'gate.md'}", soft_wrap=True)
    return result.exit_code


def cmd_history(args: argparse.Namespace) -> int:
    root = _root()
    path = Path(args.history) if args.history else root / "results" / "history" / "history.jsonl"
    if args.action == "append":
        if not args.run:
            raise HistoryError("history append: give the run to append (id, folder or run.json)")
        runs_dir = Path(args.runs_dir) if args.runs_dir else root / "results" / "runs"
        run = load_run(resolve_run(args.run, runs_dir))
        count = history.append(run, path)
        console.print(f"history: {count} lines of {run.run_id} appended to {path}")
        return EXIT_OK
    out = Path(args.out) if args.out else path.parent / "report"
    md = history.render(path, out)
    console.print(f"history: {md}", soft_wrap=True)
    return EXIT_OK


def cmd_selfcheck(args: argparse.Namespace) -> int:
    root = _root()
    out = Path(args.out) if args.out else root / "results" / "selfcheck" / new_run_id("selfcheck")
    options = selfcheck.SelfCheckOptions(
        aa=args.aa,
        ab=args.ab,
        delay_us=args.delay_us,
        min_effect=args.min_effect / 100,
        overrides=_params(args.param),
        port_offset=args.port_offset,
    )
    check = selfcheck.run_selfcheck(root, options, out, lambda line: console.print(f"  {line}"))
    print(selfcheck.render(check))
    console.print(f"selfcheck: {out / 'selfcheck.json'}", soft_wrap=True)
    return EXIT_OK


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


def cmd_load(args: argparse.Namespace) -> int:
    root = _root()
    if args.engine == "loadgen":
        subprocess.run(LOADGEN_BUILD.command, cwd=root / LOADGEN_BUILD.dir, check=True)
    workdir = Path(tempfile.mkdtemp(prefix="patternbench-load-"))
    load = load_url.run(
        load_url.LoadRequest(
            url=args.url,
            engine=args.engine,
            rate=None if args.closed_loop else args.rate,
            duration_s=args.duration,
            warmup_s=args.warmup,
            arrival=args.arrival,
            users=args.users,
            cpus=parse_cpu_list(args.cpus) if args.cpus else load_url.default_cpus(),
            workdir=workdir,
            root=root,
            max_in_flight=args.max_in_flight,
        )
    )
    data = load_url.summary(args.url, load, poisson=args.arrival == "poisson")
    print(load_url.text(data))
    if args.json:
        load_url.write_summary(Path(args.json), data)
    shutil.rmtree(workdir, ignore_errors=True)
    return EXIT_OK if data["valid"] else EXIT_FAILED


def cmd_engines(args: argparse.Namespace) -> int:
    root = _root()
    subprocess.run(["go", "build", "-o", "bin/", "./cmd/loadgen", "./cmd/hello"], cwd=root / "go",
                   check=True)  # fmt: skip
    figures = engine_check.measure_engines(root, lambda line: print(f"  {line}", flush=True))
    print(
        f"loadgen / wrk: {figures.loadgen_max_rps:,.0f} / {figures.wrk_rps:,.0f} req/s = "
        f"{figures.loadgen_ratio:.2f} (target >= 0.5)\n"
        f"Locust recording overhead: {100 * figures.recording_overhead:.1f}% "
        f"(median of {len(figures.locust_plain_rps)} alternations; target <= 10%)"
    )
    return EXIT_OK


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
        func=cmd_list
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
    run.set_defaults(func=cmd_run)

    load = sub.add_parser(
        "load",
        help="load any HTTP URL open-loop (or closed-loop) and print HDR percentiles",
        description="Exit status: 0 when the load generator kept up, 1 when it was the limit.",
    )
    load.add_argument("url", help="http://host:port/path to GET")
    load.add_argument("--rate", type=float, default=1000.0, help="open-loop req/s (default 1000)")
    load.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    load.add_argument("--warmup", type=float, default=2.0, help="seconds not measured first")
    load.add_argument("--engine", choices=("loadgen", "locust"), default="loadgen")
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant")
    load.add_argument("--closed-loop", action="store_true", help="Locust users instead of a rate")
    load.add_argument("--users", type=int, default=10, help="closed-loop users (default 10)")
    load.add_argument("--max-in-flight", type=int, default=1000, help="open-loop concurrency cap")
    load.add_argument("--cpus", help="CPU list for the generator (default: lower half)")
    load.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    load.set_defaults(func=cmd_load)

    sub.add_parser(
        "engines", help="measure the load engines' headroom against wrk and plain Locust"
    ).set_defaults(func=cmd_engines)

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
    cmp.set_defaults(func=cmd_compare)

    gat = sub.add_parser(
        "gate",
        help="measure two git revisions interleaved and decide whether head regressed",
        description="Exit status: 0 no regression, 1 regression, 2 undecided or could not run.",
    )
    gat.add_argument("--base", required=True, help="git ref of the base (e.g. the merge base)")
    gat.add_argument("--head", default="HEAD", help="git ref of the head (default HEAD)")
    gat.add_argument("--patterns", help="comma-separated patterns (default: all on both sides)")
    gat.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    gat.add_argument("--budget", type=float, metavar="MINUTES",
                     help="cap the trials so the measurement fits this many minutes")  # fmt: skip
    _decision_args(gat)
    gat.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the gate profile")  # fmt: skip
    gat.add_argument("--instructions", action="store_true",
                     help="also compare instruction counts (callgrind) of the in-process "
                     "scenarios; a 1%% change is called")  # fmt: skip
    gat.add_argument("--out", help="folder for gate.json, gate.md and the runs")
    gat.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    gat.set_defaults(func=cmd_gate)

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
    his.set_defaults(func=cmd_history)

    sel = sub.add_parser(
        "selfcheck",
        help="measure the gate: false positives (A/A) and detections of an injected delay (A/B)",
    )
    sel.add_argument("--aa", type=int, default=20, help="A/A gates (default 20)")
    sel.add_argument("--ab", type=int, default=20, help="A/B gates (default 20)")
    sel.add_argument("--delay-us", type=int, default=750,
                     help="busy wait per request, µs (default 750: ≈9%% of p50)")  # fmt: skip
    _decision_args(sel, alpha=False)
    sel.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the gate profile")  # fmt: skip
    sel.add_argument("--out", help="folder for selfcheck.json, selfcheck.md and the gates")
    sel.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    sel.set_defaults(func=cmd_selfcheck)

    rep = sub.add_parser("report", help="render report.md and report.html for a stored run")
    rep.add_argument("run", help="run id, run folder or run.json")
    rep.add_argument("--runs-dir", help="where runs are stored (default: results/runs)")
    rep.set_defaults(func=cmd_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except (CatalogError, CpuSetError, ResultFileError, LookupError, LoadError, GateError,
            HistoryError) as e:  # fmt: skip
        print(f"patternbench: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "patternbench: interrupted; every process it started has been stopped", file=sys.stderr
        )
        return 130
    return status
