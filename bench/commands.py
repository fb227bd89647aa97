"""What each `patternbench` command does; `bench.cli` parses the arguments and hands the parts in.

Exit status: 0 when every implementation was measured, 1 when one failed (build, start-up, test
vectors, crash), 2 on bad input (an unknown pattern or parameter, a malformed system.toml or
result file) — always with one line saying what and where.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.catalog import CatalogError, Pattern, load_catalog
from bench.engines import check as engine_check
from bench.engines import check_grpc as engine_grpc
from bench.engines import target
from bench.engines import url as load_url
from bench.engines.spec import LoadError
from bench.gate import compare, gate, gate_report, history, selfcheck
from bench.gate.gate import GateError
from bench.gate.gate_report import Side
from bench.gate.history import HistoryError
from bench.launch.cpusets import CpuSetError, plan
from bench.models import RunResult
from bench.report import write as report
from bench.report.sections import ReportSection
from bench.run import Parts, PatternRun, RunOptions, new_run_id
from bench.store import ResultFileError, load_run, resolve_run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Bad input, said in one line (exit 2).
USAGE_ERRORS = (CatalogError, CpuSetError, ResultFileError, LookupError, LoadError, GateError,
                HistoryError, selfcheck.SelfCheckError)  # fmt: skip

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


def _catalog(root: Path, parts: Parts) -> dict[str, Pattern]:
    return load_catalog(root, parts.kinds())


def _sections(result: RunResult, run_dir: Path, parts: Parts) -> list[ReportSection]:
    """The report sections of the run's studies, each rendered by its kind."""
    known = [s for s in result.studies if s.kind in parts.studies]
    return [parts.studies[s.kind].section(s, result, run_dir) for s in known]


def _render(result: RunResult, run_dir: Path, parts: Parts) -> tuple[Path, Path]:
    return report.render(result, run_dir, _sections(result, run_dir, parts))


def cmd_list(args: argparse.Namespace, parts: Parts) -> int:
    catalog = _catalog(_root(), parts)
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
    from bench.stats.summary import error_note

    for impl in result.implementations:
        if impl.status != "ok":
            _say(f"  {impl.name:<16} {impl.status}: {impl.error}")
        for point in impl.points:
            at = f"{point.target_rps:>8,.0f} req/s" if point.target_rps else "closed-loop   "
            if not point.valid:
                why = sorted({r for t in point.trials for r in t.invalid_reasons})
                _say(f"  {impl.name:<16} {at}  INVALID: {'; '.join(why) or 'too few valid trials'}")
                continue
            s = point.summary
            _say(
                f"  {impl.name:<16} {at}  served {s['throughput_rps'].median:>9,.0f} req/s  "
                f"p50 {s['p50'].median:.2f} ms  p99 {s['p99'].median:.2f} ms  "
                f"errors {100 * s['error_rate'].median:.2f}%"
            )
            note = error_note(point)
            if note is not None:
                _say(f"  {'':<16} {'':>14}  {note}")
        if impl.knee_rps is not None:
            _say(f"  {impl.name:<16} knee: {impl.knee_rps:,.0f} req/s")
        if impl.search is not None:
            best = impl.search.best_rate
            _say(f"  {impl.name:<16} highest rate meeting the SLO: "
                 f"{f'{best:,.0f} req/s' if best is not None else 'none'}")  # fmt: skip


def _run_one(pattern: Pattern, options: RunOptions, parts: Parts) -> int:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>5.1f}/{task.total} s"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    # The run checks its parameters first: a bad one is one line, with no progress drawn yet.
    run = PatternRun(pattern, options, RichProgress(progress, pattern.pattern), parts)
    with progress:
        result = run.execute()
    md, html = _render(result, run.run_dir, parts)
    _print_summary(result)
    console.print(
        f"result: {run.run_dir / 'run.json'}\nreport: {md}\n        {html}", soft_wrap=True
    )
    return EXIT_OK if all(i.status == "ok" for i in result.implementations) else EXIT_FAILED


def cmd_run(args: argparse.Namespace, parts: Parts) -> int:
    root = _root()
    catalog = _catalog(root, parts)
    names = list(catalog) if args.all or not args.patterns else args.patterns
    for name in names:
        if name not in catalog:
            raise CatalogError(f"no pattern {name!r} (known: {', '.join(catalog)})")
    for name in names:
        _check_ports(catalog[name], args.port_offset)
    status = EXIT_OK
    for name in names:
        cpusets = plan(
            sorted(os.sched_getaffinity(0)),
            args.cpus_system,
            args.cpus_loadgen,
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
        status = max(status, _run_one(catalog[name], options, parts))
    return status


def _check_ports(pattern: Pattern, offset: int) -> None:
    """Every port of the pattern, shifted by --port-offset, is still a port."""
    ports = [impl.port for impl in pattern.implementations.values()]
    ports += [m.port for i in pattern.implementations.values() if (m := i.metrics) and m.port]
    ports += [port for support in pattern.support.values() for port in support.ports]
    if ports and max(ports) + offset > 65535:
        raise CatalogError(
            f"--port-offset {offset}: {pattern.pattern}'s port {max(ports)} would become "
            f"{max(ports) + offset}, past 65535"
        )


def cmd_report(args: argparse.Namespace, parts: Parts) -> int:
    runs_dir = Path(args.runs_dir) if args.runs_dir else _root() / "results" / "runs"
    path = resolve_run(args.run, runs_dir)
    md, html = _render(load_run(path), path.parent, parts)
    console.print(f"report: {md}\n        {html}", soft_wrap=True)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, parts: Parts) -> int:
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


def cmd_gate(args: argparse.Namespace, parts: Parts) -> int:
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
        parts=parts,
    )
    result, out = gate.run_gate(root, options, say=lambda line: console.print(f"gate: {line}"))
    print((out / "gate.md").read_text(encoding="utf-8"))  # stdout: e.g. >> $GITHUB_STEP_SUMMARY
    console.print(f"gate: {out / 'gate.json'}\n      {out / 'gate.md'}", soft_wrap=True)
    return result.exit_code


def cmd_history(args: argparse.Namespace, parts: Parts) -> int:
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


def cmd_selfcheck(args: argparse.Namespace, parts: Parts) -> int:
    root = _root()
    catalog = _catalog(root, parts)
    name = args.pattern or next((n for n, p in catalog.items() if p.selfcheck), None)
    if name is None or name not in catalog:
        raise CatalogError(
            f"selfcheck: no pattern {name!r} with a [selfcheck] table: give --pattern"
        )
    target = selfcheck.Target.of(
        catalog[name], implementation=args.impl, file=args.file, after=args.after, code=args.code
    )
    out = Path(args.out) if args.out else root / "results" / "selfcheck" / new_run_id("selfcheck")
    options = selfcheck.SelfCheckOptions(
        target=target,
        parts=parts,
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


def cmd_load(args: argparse.Namespace, parts: Parts) -> int:
    root = _root()
    engine = parts.engines.get(args.engine)
    if engine is None:
        raise LoadError(f"--engine {args.engine}: no such load engine "
                        f"(known: {', '.join(parts.engines)})")  # fmt: skip
    target.check_reachable(args.url)  # nothing listening is a failed load, said before starting
    with tempfile.TemporaryDirectory(prefix="patternbench-load-") as workdir:
        engine.build(root, Path(workdir) / "build.log")
        load = load_url.run(
            load_url.LoadRequest(
                url=args.url,
                engine=args.engine,
                rate=None if args.closed_loop else args.rate,
                duration_s=args.duration,
                warmup_s=args.warmup,
                arrival=args.arrival,
                users=args.users,
                cpus=args.cpus or load_url.default_cpus(),
                workdir=Path(workdir),
                root=root,
                max_in_flight=args.max_in_flight,
                grpc_method=args.grpc_method,
                grpc_request=args.grpc_request,
                proto_modules=tuple(args.proto_module),
            ),
            parts.engines,
        )
    data = load_url.summary(args.url, load, poisson=args.arrival == "poisson")
    print(load_url.text(data))
    if args.json:
        load_url.write_summary(args.json, data)
    return EXIT_OK if data["valid"] and not data["failed"] else EXIT_FAILED


def cmd_engines(args: argparse.Namespace, parts: Parts) -> int:
    root = _root()
    subprocess.run(["go", "build", "-o", "bin/", "./cmd/..."], cwd=root / "go", check=True)

    def say(line: str) -> None:
        print(f"  {line}", flush=True)

    figures = engine_check.measure_engines(root, say)
    lines = [
        f"loadgen / wrk: {figures.loadgen_max_rps:,.0f} / {figures.wrk_rps:,.0f} req/s = "
        f"{figures.loadgen_ratio:.2f} (target >= 0.5)",
        f"Locust recording overhead: {100 * figures.recording_overhead:.1f}% "
        f"(median of {len(figures.locust_plain_rps)} alternations; target <= 10%)",
    ]
    code = EXIT_OK
    ghz = engine_grpc.ghz_binary()
    if isinstance(ghz, str) or not args.grpc_target:
        why = ghz if isinstance(ghz, str) else "no --grpc-target PATTERN/IMPL given"
        lines.append(f"loadgen gRPC / ghz: skipped: {why}")
    else:
        try:
            aim = engine_grpc.find_target(root, args.grpc_target, parts.kinds())
            grpc = engine_grpc.measure_grpc(root, ghz, aim, say)
        except engine_grpc.GrpcCheckError as e:
            lines.append(f"loadgen gRPC / ghz: not measured: {e}")
            code = EXIT_FAILED
        else:
            best = grpc.ghz_best
            lines.append(
                f"loadgen gRPC / ghz: {grpc.loadgen_max_rps:,.0f} / {best.ok_rps:,.0f} calls/s = "
                f"{grpc.ratio:.2f} (target >= {engine_grpc.TARGET_RATIO}; loadgen open-loop, "
                f"ghz closed-loop -c {best.concurrency} --connections {best.connections})"
            )
    print("\n".join(lines))
    return code


COMMANDS: dict[str, Callable[[argparse.Namespace, Parts], int]] = {
    "list": cmd_list, "run": cmd_run, "load": cmd_load, "engines": cmd_engines,
    "compare": cmd_compare, "gate": cmd_gate, "history": cmd_history,
    "selfcheck": cmd_selfcheck, "report": cmd_report,
}  # fmt: skip


def dispatch(args: argparse.Namespace, parts: Parts) -> int:
    """Run the command (a subcommand added with its own `func` default runs that); bad input is
    one line and exit 2, an unreachable load target one line and exit 1."""
    command: Callable[[argparse.Namespace, Parts], int] = (
        getattr(args, "func", None) or COMMANDS[args.command]
    )
    try:
        return command(args, parts)
    except USAGE_ERRORS as e:
        print(f"patternbench: {e}", file=sys.stderr)
        return EXIT_USAGE
    except target.Unreachable as e:
        print(f"patternbench: {e}", file=sys.stderr)
        return EXIT_FAILED
