"""The ceiling study (kind "ceiling"): what a model computes at most, per batch size, in process,
set against what the run's servers served.

A pattern that serves a model by implementations with and without batching (one forward pass
per request, or requests gathered into batches) names a measuring script in its
`[studies.<name>]` table (bench/studies/ceiling_spec.py). The kind runs it once, pinned
(taskset) to the study's CPUs with nothing else of the harness running:

    python SCRIPT *args --batch-sizes 1,2,…,512 --min-run-time S

and the script prints one JSON object: samples/s of a forward pass per batch size, one figure
per timed block, and the device, library versions and threads it ran with
(bench/studies/ceiling_data.py). Its output is kept as `<workdir>/ceiling.json`. The study holds
the "raw ceiling" series: samples/s (the median over the blocks with its bootstrap interval)
against the batch size.

The report (bench/studies/ceiling_report.py) sets the ceiling against the servers' own metrics
of the run: the samples each served per second and per forward pass, what batching cost at low
load and what it bought at the SLO (bench/studies/ceiling_served.py).

A script that fails, times out or prints no ceiling is one line in the study's errors; `run`
never raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from bench.models import RunResult, Study
from bench.report.sections import ReportSection
from bench.studies import ceiling_report
from bench.studies.base import StudyContext
from bench.studies.ceiling_data import Ceiling, CeilingDataError, missing, read_output, to_ceiling
from bench.studies.ceiling_data import to_study as study_of
from bench.studies.ceiling_spec import CeilingSpec
from bench.studies.pinned import CommandError, Pinned

OUTPUT = "ceiling.json"
#: Seconds for the script to start (import torch, load or make the weights) and finish.
START_S = 120.0
#: Seconds per batch size beyond its timing: warm-up and blocked_autorange's block estimate.
PER_BATCH_S = 20.0


class CeilingStudy:
    """The ceiling study kind (bench/studies/base.py's StudyKind)."""

    spec_model: type[BaseModel] = CeilingSpec

    def run(self, name: str, spec: BaseModel, ctx: StudyContext) -> Study:
        assert isinstance(spec, CeilingSpec)
        return study_of(name, spec.model_dump(mode="json"), run_ceiling(spec, ctx))

    def section(self, study: Study, run: RunResult, run_dir: Path) -> ReportSection:
        return ceiling_report.section(study, run, run_dir)


def command(spec: CeilingSpec, root: Path) -> list[str]:
    """The script with the table's arguments, the batch sizes and the time per size."""
    return [
        sys.executable, str(root / spec.script), *spec.args,
        "--batch-sizes", ",".join(map(str, spec.batch_sizes)),
        "--min-run-time", f"{spec.min_run_time_s:g}",
    ]  # fmt: skip


def timeout_s(spec: CeilingSpec) -> float:
    """Start-up, and per batch size a few times its timing plus the warm-up."""
    return START_S + len(spec.batch_sizes) * (3 * spec.min_run_time_s + PER_BATCH_S)


def run_ceiling(spec: CeilingSpec, ctx: StudyContext) -> Ceiling:
    """The script run pinned to the study's CPUs; its output kept in the study's folder."""
    cpus = list(ctx.cpus)
    try:
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        (ctx.workdir / OUTPUT).unlink(missing_ok=True)
        sizes = ", ".join(map(str, spec.batch_sizes))
        ctx.say(f"raw ceiling: batch sizes {sizes}, {spec.min_run_time_s:g} s each")
        pinned = Pinned(root=ctx.root, cpus=cpus)
        text = pinned.run(command(spec, ctx.root), ctx.root, timeout_s(spec))
        (ctx.workdir / OUTPUT).write_text(text, encoding="utf-8")  # as the script printed it
        output = read_output(text)
    except (CommandError, CeilingDataError, OSError) as e:
        return Ceiling(points=[], cpus=cpus, errors=[f"{Path(spec.script).name}: {e}"])
    ceiling = to_ceiling(output, cpus, OUTPUT)
    return Ceiling(points=ceiling.points, facts=ceiling.facts, cpus=cpus, file=OUTPUT,
                   errors=missing(ceiling, spec.batch_sizes))  # fmt: skip
