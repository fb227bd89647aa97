"""The pool study (kind "pools"): a pattern's pools timed without a network, by pyperf and
`go test -bench`.

Besides its service sweep, a pattern with a `[studies.<name>]` table of this kind gets two
measurements of its pools, run in process on batches of identical tasks:

- **scaling**: throughput against the number of workers (1 … the CPUs the study may use) for a
  task of `scaling_ms`, for each kernel variant: `spin` (holds the GIL), `hash` over a large
  block (releases it) and over a small one (holds it);
- **crossover**: `spin` tasks of each size of `task_ms` (0.1 … 100 ms), so the report shows where
  the per-task overhead of a pool (pickling, IPC, hand-off) eats the gain of its workers.

Task sizes are times, not round counts. Each kernel is calibrated **where the tasks run**: by the
pattern's own pyperf script (`--calibrate`) or Go benchmark, with the interpreter that runs the
tasks, pinned (taskset) to the CPUs the study uses, and nothing else of the harness running; the
lowest of several probes is taken, since anything else running only adds time to a probe. A
Go spin round is about 100 times cheaper than a CPython one, so "a 10 ms task" is a different
number of rounds per language and the same time. Every pyperf worker process then times the
kernel alone once more, and the Go benchmark's one-worker batches give Go's: the study records
that measured size beside the asked one for every configuration, and the report says which
configurations missed it by more than `tolerance` (±10%).

Each configuration is one pyperf run (its own worker processes, `pyperf_processes` ×
`pyperf_values` values), appended to its implementation's suite (bench/studies/pools_pyperf.py),
or one case of `go test -bench … -count go_count`; every timed batch is kept and the throughput
is their median with a bootstrap interval. A configuration that fails is recorded with its error
and the study goes on.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel

from bench.models import RunResult, Study
from bench.report.sections import ReportSection
from bench.stats.summary import estimate
from bench.studies import pools_report
from bench.studies.base import StudyContext
from bench.studies.pinned import CommandError, Pinned
from bench.studies.pools_data import FreeThreaded, Measurement, PoolResults, Role, to_study
from bench.studies.pools_go import GoBenchError, calibrate_go, go_guess, go_measurements, run_go
from bench.studies.pools_go import measurement as make_measurement
from bench.studies.pools_plan import (
    PoolImplementation,
    PoolSpec,
    calibration_group,
    calibration_key,
    describe,
    plan,
    variants,
)
from bench.studies.pools_pyperf import (
    calibrate,
    find_free_threaded,
    free_threaded_env,
    run_config,
    suite_path,
)

GO_LOG = "go-bench.txt"


class PoolStudy:
    """The pools study kind (bench/studies/base.py's StudyKind)."""

    spec_model: type[BaseModel] = PoolSpec

    def run(self, name: str, spec: BaseModel, ctx: StudyContext) -> Study:
        assert isinstance(spec, PoolSpec)
        return to_study(name, spec.model_dump(mode="json"), run_pools(spec, ctx))

    def section(self, study: Study, run: RunResult, run_dir: Path) -> ReportSection:
        return pools_report.section(study, run, run_dir)


def _interpreters(
    spec: PoolSpec, pinned: Pinned, ctx: StudyContext
) -> tuple[dict[bool, str], FreeThreaded]:
    """The Python interpreter of each kind (free-threaded or not) the table asks for."""
    pythons = {False: sys.executable}
    if not any(i.free_threaded for i in spec.implementations):
        return pythons, FreeThreaded(available=False, note="not asked for", asked=False)
    ft = find_free_threaded()
    if ft.available and ft.interpreter:
        ctx.say("preparing the free-threaded interpreter")
        try:
            pythons[True] = free_threaded_env(pinned, ft.interpreter)
        except CommandError as e:
            ft = replace(ft, available=False, note=f"{ft.note}; unusable: {e}")
    return pythons, ft


def _calibrate(
    spec: PoolSpec,
    impls: list[PoolImplementation],
    pinned: Pinned,
    pythons: dict[bool, str],
    ctx: StudyContext,
    errors: list[str],
) -> dict[str, list[float]]:
    """ns per round of every kernel variant, per calibration group, where the tasks run: one
    figure per probe."""
    found: dict[str, list[float]] = {}
    groups = {calibration_group(i): i for i in impls}
    for group, impl in sorted(groups.items(), key=lambda g: g[1].runner != "pyperf"):
        ctx.say(f"calibrating the kernels of {group} where the tasks run")
        try:
            if impl.runner == "pyperf":
                for v in variants(spec):
                    found[calibration_key(group, v)] = calibrate(
                        pinned, spec, pythons[impl.free_threaded], v,
                        free_threaded=impl.free_threaded,
                    )  # fmt: skip
            else:
                assert spec.go is not None
                guess = {
                    v: go_guess(v, next((min(probes) for k, probes in found.items()
                                         if k.endswith(calibration_key("", v))), None))
                    for v in variants(spec)
                }  # fmt: skip
                found |= calibrate_go(pinned, spec.go, group, variants(spec), guess,
                                      ctx.workdir / GO_LOG)  # fmt: skip
        except (CommandError, GoBenchError) as e:
            errors.append(f"calibration of {group}: {e}")
    return found


def run_pools(spec: PoolSpec, ctx: StudyContext) -> PoolResults:
    """Calibrate, plan and time every configuration; failures are kept in `errors`."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    pinned = Pinned(root=ctx.root, cpus=ctx.cpus)
    workers = list(range(1, len(ctx.cpus) + 1))
    errors: list[str] = []
    pythons, ft = _interpreters(spec, pinned, ctx)
    impls = [i for i in spec.implementations if not i.free_threaded or True in pythons]
    probes = _calibrate(spec, impls, pinned, pythons, ctx, errors)
    impls = [
        i for i in impls
        if all(calibration_key(calibration_group(i), v) in probes for v in variants(spec))
    ]  # fmt: skip
    # Noise on a shared machine only adds time: the lowest probe is the kernel's own cost.
    ns = {key: min(values) for key, values in probes.items()}
    configs = plan(spec, impls, workers, ns)
    by_name = {i.name: i for i in impls}
    measurements: list[Measurement] = []
    for impl in impls:
        suite_path(ctx.workdir, impl).unlink(missing_ok=True)  # pyperf appends
    python_configs = [c for c in configs if by_name[c.implementation].runner == "pyperf"]
    for n, config in enumerate(python_configs, 1):
        ctx.say(f"pyperf {n}/{len(python_configs)}: {describe(config)}")
        impl = by_name[config.implementation]
        try:
            values, measured = run_config(pinned, spec, impl, config, pythons[impl.free_threaded],
                                          suite_path(ctx.workdir, impl))  # fmt: skip
        except CommandError as e:
            errors.append(f"{describe(config)}: {e}")
            continue
        measurements.append(make_measurement(config, "pyperf", values, measured))
    go_configs = [c for c in configs if by_name[c.implementation].runner == "go"]
    if go_configs:
        assert spec.go is not None
        ctx.say(f"go test -bench: {len(go_configs)} configurations, {spec.go_count} samples each")
        try:
            timeout = 120 + 20 * spec.go_count * len(go_configs) * spec.batch_s
            lines = run_go(pinned, spec.go, go_configs, workers, spec.go_count, timeout,
                           ctx.workdir / GO_LOG)  # fmt: skip
            measurements += go_measurements(lines, go_configs)
        except (CommandError, GoBenchError) as e:
            errors.append(f"go test -bench: {e}")
    service = (
        {"kernel": spec.service_kernel, "rounds": spec.service_rounds}
        if spec.service_kernel and spec.service_rounds
        else None
    )
    return PoolResults(
        cpus=list(ctx.cpus),
        scaling_ms=spec.scaling_ms,
        task_ms=spec.task_ms,
        roles=[Role.model_validate(i.model_dump()) for i in impls],
        free_threaded=ft,
        measurements=measurements,
        ns_per_round=ns,
        calibration={key: estimate(values) for key, values in probes.items()},
        errors=errors,
        tolerance=spec.tolerance,
        service_task=service,
    )
