"""`patternbench gate`: measure two git revisions on this machine, interleaved, and decide.

1. Both revisions are checked out in git worktrees (`.gate/<id>/base`, `.gate/<id>/head`) and
   their Go binaries built there; a revision that does not build makes the gate undecided.
2. For each pattern, the `gate` profile is run as single-trial runs alternating base, head,
   base, head … (A B A B, so a machine that drifts hurts both alike). Each side's services,
   simulators and locustfiles come from its own worktree; the load generator and every
   measurement rule come from the checkout running the gate, so that a change to the harness
   cannot grade itself. The test vectors are checked on each side's first round.
3. Each side's trials are merged into one run per pattern (stored under the gate's folder with
   its report), and `bench.compare` decides over every comparison of every pattern at once.

An invalid trial is re-run (both sides, one more round) until each side has the trials asked for,
up to as many extra rounds as were planned; the gate says how many it re-ran and why.
`--budget MINUTES` caps the trials per side so the whole gate fits (re-runs included); the gate
then says when the trials it can afford are too few to see `--min-effect`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.catalog import CatalogError, Pattern, load_catalog, template_values
from bench.gate import compare, gate_report
from bench.launch.cpusets import plan
from bench.models import ImplementationResult, LoadPoint, ParamValue, RunResult
from bench.params import trials_seconds
from bench.report import write as report
from bench.run import Parts, PatternRun, Progress, QuietProgress, RunOptions
from bench.stats.summary import make_point
from bench.store import save_run
from bench.studies import instructions as instr
from bench.studies.pools_plan import PoolSpec
from bench.templates import render_table

GATE_PROFILE = "gate"
SIDES = ("base", "head")


class GateError(Exception):
    """The gate could not run (a ref that does not resolve, a revision that does not build)."""


@dataclass(frozen=True, kw_only=True)
class GateOptions:
    base: str
    head: str
    patterns: list[str] | None = None
    implementations: list[str] | None = None
    budget_min: float | None = None
    alpha: float = compare.ALPHA
    min_effect: float = compare.MIN_EFFECT
    out_dir: Path | None = None
    instructions: bool = False
    min_effect_instructions: float = instr.MIN_EFFECT
    overrides: Mapping[str, str] = field(default_factory=dict)
    port_offset: int = 0
    #: The engines, probes and studies (the composition root's).
    parts: Parts


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def resolve(root: Path, ref: str) -> str:
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GateError:
        raise GateError(f"{ref}: not a commit in this repository") from None


@contextlib.contextmanager
def worktrees(root: Path, shas: Mapping[str, str], folder: Path) -> Iterator[dict[str, Path]]:
    """A detached worktree per side, removed afterwards whatever happens."""
    made: dict[str, Path] = {}
    try:
        for side, sha in shas.items():
            path = folder / side
            git(root, "worktree", "add", "--force", "--detach", str(path), sha)
            made[side] = path
        yield made
    finally:
        for path in made.values():
            with contextlib.suppress(GateError):
                git(root, "worktree", "remove", "--force", str(path))
        with contextlib.suppress(GateError):
            git(root, "worktree", "prune")


def build_go(tree: Path) -> None:
    """Every Go binary of a revision, as `make setup` builds them."""
    done = subprocess.run(
        ["go", "build", "-o", "bin/", "./cmd/..."],
        cwd=tree / "go",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = " / ".join(done.stderr.strip().splitlines()[-3:])
        raise GateError(f"go build failed: {tail}")


def round_seconds(
    pattern: Pattern, params: Mapping[str, ParamValue], implementations: Sequence[str] = ()
) -> float:
    """What one base + head round of single trials costs, roughly: each side's trials of the
    implementations measured (`implementations`, else the profile's), as a run plans them."""
    rates = max(1, len(str(params.get("rates") or "x").split(",")))
    impls = len(implementations or pattern.selected(params))
    return 2 * trials_seconds({**params, "trials": 1}, impls * rates)


def merge(runs: Sequence[RunResult]) -> RunResult:
    """Single-trial runs of one side into one run: trials appended per implementation and rate."""
    first = runs[0]
    impls: list[ImplementationResult] = []
    for template in first.implementations:
        mine = [r.implementation(template.name) for r in runs]
        failed = next((i for i in mine if i.status != "ok"), None)
        by_rate: dict[float | None, list[LoadPoint]] = {}
        for impl in mine:
            for point in impl.points:
                by_rate.setdefault(point.target_rps, []).append(point)
        points = []
        for rate, same in by_rate.items():
            trials = [t for p in same for t in p.trials]
            trials = [t.model_copy(update={"index": i}) for i, t in enumerate(trials)]
            points.append(make_point(rate, trials))
        update: dict[str, object] = {"points": points, "knee_rps": None, "search": None}
        if failed is not None:
            update |= {"status": failed.status, "error": failed.error,
                       "stderr_tail": failed.stderr_tail,
                       "verify_problems": failed.verify_problems}  # fmt: skip
        impls.append(template.model_copy(update=update))
    scenario = first.scenario.model_copy(update={"trials": len(runs)})
    return first.model_copy(update={"implementations": impls, "scenario": scenario})


def run_gate(
    root: Path,
    options: GateOptions,
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[gate_report.GateResult, Path]:
    """Measure and decide; return the result and the folder holding gate.json and gate.md."""
    progress = progress or QuietProgress()
    shas = {"base": resolve(root, options.base), "head": resolve(root, options.head)}
    gate_id = (
        f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{shas['base'][:8]}-{shas['head'][:8]}"
    )
    out = options.out_dir or root / "results" / "gates" / gate_id
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    warnings: list[str] = []
    samples: list[compare.Samples] = []
    counted: list[compare.Comparison] = []
    runs_by_side: dict[str, list[str]] = {side: [] for side in SIDES}
    started = time.monotonic()
    with worktrees(root, shas, root / ".gate" / gate_id) as trees:
        catalogs: dict[str, dict[str, Pattern]] = {}
        for side in SIDES:
            say(f"{side} {shas[side][:10]}: building")
            try:
                build_go(trees[side])
                catalogs[side] = load_catalog(trees[side], options.parts.kinds())
            except (GateError, CatalogError) as e:
                problems.append(f"{side} ({shas[side][:10]}) cannot run: {e}")
        if not problems:
            names = options.patterns or [n for n in catalogs["base"] if n in catalogs["head"]]
            for name in names:
                missing = [s for s in SIDES if name not in catalogs[s]]
                if missing:
                    problems.append(f"{name}: no such pattern in {' and '.join(missing)}")
                    continue
                pair = {s: catalogs[s][name] for s in SIDES}
                merged = _measure(root, pair, options, out, progress, say, warnings)
                for side in SIDES:
                    folder = out / f"{side}-{name}"
                    runs_by_side[side].append(str(folder))
                    save_run(merged[side], folder)
                    report.render(merged[side], folder)
                found, trouble = compare.pair_samples(merged["base"], merged["head"])
                samples += found
                problems += trouble
                if options.instructions and all(_pool_specs(pair[s]) for s in SIDES):
                    say(f"{name}: counting instructions (callgrind)")
                    try:
                        counted += _instructions(trees, pair, options.min_effect_instructions)
                    except instr.InstructionsError as e:
                        problems.append(f"{name}: instructions: {e}")
    comparisons = compare.decide(samples, alpha=options.alpha, min_effect=options.min_effect)
    comparisons += counted
    say(f"measured in {time.monotonic() - started:.0f} s")
    sides = {
        side: gate_report.Side(label=ref, git_sha=shas[side], runs=runs_by_side[side])
        for side, ref in zip(SIDES, (options.base, options.head), strict=True)
    }
    result = gate_report.make_result(
        sides["base"], sides["head"], comparisons, problems, alpha=options.alpha,
        min_effect=options.min_effect, warnings=warnings,
    )  # fmt: skip
    links = {Path(r).name: f"{Path(r).name}/report.md" for s in SIDES for r in runs_by_side[s]}
    gate_report.save(result, out, links)
    shutil.rmtree(root / ".gate" / gate_id, ignore_errors=True)
    return result, out


def _pool_specs(pattern: Pattern) -> list[PoolSpec]:
    """The pattern's pool-study tables, whether or not its profiles switch them on."""
    profile = GATE_PROFILE if GATE_PROFILE in pattern.profiles else "quick"
    values = template_values(pattern, pattern.resolve_params(profile, {}))
    return [
        PoolSpec.model_validate(render_table(table.rest(), values))
        for table in pattern.studies.values()
        if pattern.kinds.studies.get(table.kind) is PoolSpec
    ]


def _instructions(
    trees: Mapping[str, Path], pair: Mapping[str, Pattern], min_effect: float
) -> list[compare.Comparison]:
    """Instruction counts of the pattern's in-process scenarios on both sides, compared."""
    counts = {}
    label = ""
    for side in SIDES:
        spec = _pool_specs(pair[side])[0]
        label = f"{instr.inline_implementation(spec).name} (in process)"
        counts[side] = instr.count(trees[side], spec, sys.executable)
    return [
        compare.decide_instructions(
            pair["base"].pattern,
            label,
            b.scenario,
            b.per_batch,
            h.per_batch,
            min_effect=min_effect,
        )
        for b, h in zip(counts["base"], counts["head"], strict=True)
    ]


def _measure(
    root: Path,
    pair: Mapping[str, Pattern],
    options: GateOptions,
    out: Path,
    progress: Progress,
    say: Callable[[str], None],
    warnings: list[str],
) -> dict[str, RunResult]:
    """Alternate single-trial runs of base and head for one pattern; merge each side's."""
    base = pair["base"]
    profile = GATE_PROFILE if GATE_PROFILE in base.profiles else "quick"
    params = base.resolve_params(profile, dict(options.overrides))
    trials = int(params["trials"])
    affordable = 2 * trials
    if options.budget_min is not None:
        cost = round_seconds(base, params, options.implementations or ())
        affordable = int(options.budget_min * 60 // cost)
        if affordable < trials:
            warnings.append(
                f"{base.pattern}: the budget of {options.budget_min:g} min affords {affordable} "
                f"trials a side, not the profile's {trials}"
            )
            trials = max(2, affordable)
    cpus = plan(sorted(os.sched_getaffinity(0)), system_all=base.system_cpus == "all")
    # One trial per run, no budget cuts; the studies time no service: not the gate's business.
    overrides = {**options.overrides, "trials": "1", "budget_s": "0"}

    def one(round_index: int, side: str) -> RunResult:
        which = f"{round_index + 1}/{trials}" if round_index < trials else "re-run"
        say(f"{base.pattern}: round {which}, {side}")
        run = PatternRun(
            pair[side],
            RunOptions(
                profile=profile,
                overrides=overrides,
                implementations=options.implementations,
                cpusets=cpus,
                runs_dir=out / "rounds",
                run_id=f"{side}-{base.pattern}-{round_index}",
                port_offset=options.port_offset,
                tools_root=root,
                verify=round_index == 0,
                studies=False,
            ),
            progress,
            options.parts,
        )
        return run.execute()

    runs, note = rounds(one, trials, max(0, affordable - trials), base.pattern)
    if note:
        warnings.append(note)
    return {side: merge(runs[side]) for side in SIDES}


def rounds(
    one: Callable[[int, str], RunResult], trials: int, extra: int, pattern: str
) -> tuple[dict[str, list[RunResult]], str]:
    """`trials` rounds of single-trial runs, base then head; then, while some side has fewer
    than `trials` valid trials at some implementation and rate, up to `extra` more rounds (both
    sides alike: an invalid trial is usually the machine's, not the revision's). Returns each
    side's runs and, when it re-ran or is still short, a line saying so."""
    runs: dict[str, list[RunResult]] = {side: [] for side in SIDES}
    index = 0
    while index < trials or (index < trials + extra and _short(runs, trials)):
        for side in SIDES:
            runs[side].append(one(index, side))
        index += 1
    note = ""
    if index > trials or _short(runs, trials):
        note = _rerun_note(pattern, runs, trials, index - trials)
    return runs, note


def _valid_counts(runs: Sequence[RunResult]) -> dict[tuple[str, float | None], int]:
    """Valid trials per implementation that ran (status ok) and rate, over single-trial runs."""
    counts: dict[tuple[str, float | None], int] = {}
    for run in runs:
        for impl in run.implementations:
            if impl.status != "ok":
                continue
            for point in impl.points:
                key = (impl.name, point.target_rps)
                counts[key] = counts.get(key, 0) + sum(t.valid for t in point.trials)
    return counts


def _short(runs: Mapping[str, Sequence[RunResult]], trials: int) -> bool:
    """Whether some side has fewer than `trials` valid trials at some implementation and rate."""
    return any(n < trials for side in SIDES for n in _valid_counts(runs[side]).values())


def _rerun_note(
    pattern: str, runs: Mapping[str, Sequence[RunResult]], trials: int, extra: int
) -> str:
    reasons = sorted(
        {
            reason
            for side in SIDES
            for run in runs[side]
            for impl in run.implementations
            for point in impl.points
            for t in point.trials
            for reason in t.invalid_reasons
        }
    )
    short = _short(runs, trials)
    outcome = f"still under {trials} valid trials a side" if short else "replaced"
    why = "; ".join(reasons) if reasons else "the implementation failed"
    return f"{pattern}: {extra} extra round(s) re-run for invalid trials ({why}): {outcome}"
