"""`patternbench soak` (flags: bench/soak/options.py): the campaign the project runs on itself.

It runs `patternbench run` again and again with the cheapest settings that still measure trials,
injects one fault into each run at a moment drawn from the seed (bench/soak/schedule.py), and
after each run counts what should never happen (bench/soak/checks.py): processes left alive,
ports left bound, corrupt result files or leftover temporary files, a trial broken by a killed
system or support reported as valid, tracebacks, and exit statuses that do not fit the fault.
Between runs it kills whatever a run left (only the run's own processes), so one failure does
not spill into the next.

Exit status: 0 when every count is zero, 1 when one is not (or no fault fired at all), 2 on bad
flags.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import commands
from bench.catalog import CatalogError, Pattern, load_catalog
from bench.launch.supervisor import port_in_use
from bench.params import plan_budget, rate_list
from bench.run import Parts
from bench.soak import schedule
from bench.soak.campaign import Campaign, choose_offset, pattern_ports, run_one
from bench.soak.models import Fault, RunRecord, SoakResult, total
from bench.store import write_atomic

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
#: The cheapest run that still measures: one rate, two short trials per implementation.
CHEAP = {"rates": "500", "trials": "2", "duration_s": "2", "warmup_s": "0.5"}
PROFILE = "quick"

err = Console(stderr=True)


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = dict(CHEAP)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CatalogError(f"--param {pair}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def shape_of(pattern: Pattern, overrides: dict[str, str]) -> schedule.Shape:
    """How many measured trials a run will make, and how long each window is."""
    params = pattern.resolve_params(PROFILE, overrides)
    open_loop = params["load_model"] == "open-loop"
    rates = len(rate_list(str(params["rates"])) or [0]) if open_loop else 1
    impls = len(pattern.selected(params))
    planned = {**params, **plan_budget(params, impls, rates).changes}
    return schedule.Shape(
        trials=impls * rates * int(planned["trials"]),
        warmup_s=float(planned["warmup_s"]),
        duration_s=float(planned["duration_s"]),
    )


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _line(record: RunRecord, total: int) -> str:
    c = record.counts()
    fired = "" if record.injection.fired else f" NOT FIRED ({record.injection.note})"
    return (f"soak: run {record.fault.run + 1}/{total} {record.fault.describe()}{fired}: "
            f"exit {record.exit_code}, {c.orphans} orphans, {c.held_ports} held ports, "
            f"{c.corrupt_files} corrupt, {c.broken_called_valid} called valid, "
            f"{c.tracebacks} tracebacks, {c.bad_exits} bad exits")  # fmt: skip


def table(result: SoakResult) -> Table:
    t = Table(title=f"soak: {result.pattern}, seed {result.seed}")
    for column in ("run", "fault", "target", "exit", "orphans", "held ports", "corrupt",
                   "called valid", "traceback", "note"):  # fmt: skip
        t.add_column(column)
    for r in result.runs:
        target = r.injection.target
        note = r.bad_exit or r.verdict or r.injection.note or ""
        t.add_row(
            str(r.fault.run + 1), r.fault.describe(),
            f"{target.role} {target.name} ({target.pid})" if target else "not fired",
            str(r.exit_code), str(len(r.orphans)), ",".join(map(str, r.held_ports)) or "0",
            str(len(r.corrupt_files)), "YES" if r.broken_called_valid else "no",
            "YES" if r.traceback else "no", note if len(note) <= 160 else f"{note[:159]}…",
        )  # fmt: skip
    return t


def _plan(args: argparse.Namespace, parts: Parts) -> tuple[Path, Pattern, list[str], list[Fault]]:
    """The repository, the pattern, the runs' arguments and their faults; CatalogError or
    ValueError on bad flags."""
    root = commands._root()
    catalog = load_catalog(root, parts.kinds())
    # By default the first pattern whose support starts afresh with each trial: the campaign's
    # SIGKILL of a support then hits a process the next trial replaces, as it does the system.
    name = args.pattern or next(
        (n for n, p in catalog.items() if any(s.scope == "trial" for s in p.support.values())),
        None,
    )
    if name is None or name not in catalog:
        raise CatalogError(
            f"no pattern {name!r} (known: {', '.join(catalog)})"
            if name
            else "no pattern with a trial-scoped support process: give --pattern"
        )
    pattern = catalog[name]
    overrides = _overrides(args.param)
    faults = schedule.plan(args.runs, args.seed, shape_of(pattern, overrides), args.faults)
    harness_args = ["--profile", PROFILE, *(f"--param={k}={v}" for k, v in overrides.items())]
    return root, pattern, harness_args, faults


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _campaign(args: argparse.Namespace, campaign: Campaign, faults: list[Fault]) -> SoakResult:
    """Every run in turn (until the budget is spent); soak.json written whatever happens."""
    started_at, clock = datetime.now(UTC), time.monotonic()
    records: list[RunRecord] = []
    stopped: str | None = None
    used: set[int] = set()
    ports = pattern_ports(campaign.pattern)
    offset = args.port_offset
    try:
        with _sigterm_interrupts():
            for fault in faults:
                spent = time.monotonic() - clock
                if records and args.budget is not None and spent > 60 * args.budget:
                    stopped = f"budget of {args.budget:g} min spent after {len(records)} runs"
                    break
                try:
                    offset = choose_offset(ports, offset, used, lambda p: not port_in_use(p))
                except ValueError as e:
                    stopped = str(e)
                    break
                used.update(p + offset for p in ports)
                records.append(run_one(campaign, fault, offset))
                _say(_line(records[-1], len(faults)))
    except KeyboardInterrupt:
        stopped = f"interrupted after {len(records)} runs"
        raise
    finally:
        result = SoakResult(started_at=started_at, finished_at=datetime.now(UTC),
                            pattern=campaign.pattern.pattern, seed=args.seed, runs_asked=args.runs,
                            budget_min=args.budget, stopped=stopped, settle_s=args.settle,
                            harness_args=campaign.harness_args, runs=records,
                            totals=total(records))  # fmt: skip
        write_atomic(campaign.out / "soak.json", result.model_dump_json(indent=2) + "\n")
    return result


def run_soak(args: argparse.Namespace, parts: Parts) -> int:
    try:
        root, pattern, harness_args, faults = _plan(args, parts)
    except (CatalogError, ValueError) as e:
        print(f"patternbench soak: {e}", file=sys.stderr)
        return EXIT_USAGE
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else root / "results" / "soak" / stamp
    out.mkdir(parents=True, exist_ok=True)
    campaign = Campaign(root=root, pattern=pattern, harness_args=harness_args, out=out,
                        settle_s=args.settle, run_timeout_s=args.run_timeout)  # fmt: skip
    result = _campaign(args, campaign, faults)
    Console(width=None if sys.stdout.isatty() else 160).print(table(result))
    totals = result.totals
    print(totals.line())
    if result.not_fired():
        print(
            f"soak: {result.not_fired()} of {len(result.runs)} faults did not fire (see soak.json)"
        )
    if not totals.faults:
        print("soak: no fault fired, so nothing was tested")
    if result.stopped:
        print(f"soak: {result.stopped}")
    print(f"soak: {out / 'soak.json'}")
    return EXIT_FOUND if totals.problems() or not totals.faults else EXIT_OK
