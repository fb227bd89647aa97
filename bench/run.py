"""One run of one pattern, in the order the steps happen:

1. plan: parameters of the profile, the rates, and the trials the time budget affords;
2. build: the load engine, the support processes, each implementation;
3. verify: every implementation against the pattern's test vectors, through its probe;
4. measure: the ones that passed, in trials interleaved across implementations at each rate, or a
   search for the highest rate each serves within the SLO (`bench.measure`);
5. studies: the pattern's in-process studies, with nothing else running;
6. the result, written atomically.

A failure of one implementation (build, launch, wrong answers, crash) is recorded on it with the
tail of its output, and the others go on. Every process started here is stopped before the next
trial and, on Ctrl-C, before the harness exits. The run knows no engine, probe or study by name:
the composition root hands them in (`Parts`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from bench.catalog import CatalogError, Kinds, Pattern, template_values
from bench.collect.environment import capture
from bench.engines.spec import LoadEngine, LoadError
from bench.launch.deployment import Deployment, ImplFailed, build
from bench.launch.devices import Gpu, find_gpus
from bench.launch.probes import Probe
from bench.launch.supervisor import Supervisor
from bench.launch.verify import VectorsError, load_vectors
from bench.measure import Measurement, search, sweep
from bench.models import (
    CpuSets,
    ImplementationResult,
    LoadPoint,
    ParamValue,
    RunResult,
    Scenario,
    SloSearch,
    Study,
    first_error,
)
from bench.params import Budget, plan_budget, rate_list
from bench.stats import slo as slo_
from bench.stats.summary import slo_point
from bench.store import save_run
from bench.studies.base import StudyContext, StudyKind
from bench.templates import render_table
from bench.variants import expand

#: Where a rate-limited implementation's admission is checked: at twice its limit.
ADMISSION_FACTOR = 2.0


class Progress(Protocol):
    """How the runner tells a person what it is doing; the CLI draws it, tests ignore it."""

    def phase(self, impl: str, text: str, total_s: float | None = None) -> None: ...

    def advance(self, impl: str, done_s: float) -> None: ...


class QuietProgress:
    def phase(self, impl: str, text: str, total_s: float | None = None) -> None:
        pass

    def advance(self, impl: str, done_s: float) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class Parts:
    """The kinds of engine, probe and study the harness has, by name (cli.py's dict literals)."""

    engines: Mapping[str, LoadEngine]
    probes: Mapping[str, Probe]
    studies: Mapping[str, StudyKind]

    def kinds(self) -> Kinds:
        return Kinds(
            engines={n: e.table_model for n, e in self.engines.items()},
            closed_loop=frozenset(n for n, e in self.engines.items() if e.closed_loop),
            probes={n: p.spec_model for n, p in self.probes.items()},
            studies={n: s.spec_model for n, s in self.studies.items()},
        )


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    profile: str
    overrides: Mapping[str, str]
    implementations: list[str] | None
    cpusets: CpuSets
    runs_dir: Path
    run_id: str | None = None
    port_offset: int = 0
    #: Where the load generator is built and run from (default: the pattern's root). The gate
    #: measures two revisions' systems with the one generator of the checkout running it.
    tools_root: Path | None = None
    #: Check the test vectors before timing (the gate checks them on its first round only).
    verify: bool = True
    #: Run the pattern's studies (the gate times services only).
    studies: bool = True


def new_run_id(pattern: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{pattern}"


class PatternRun:
    """The state of one run; `execute()` does the work and returns the result."""

    def __init__(
        self,
        pattern: Pattern,
        options: RunOptions,
        progress: Progress,
        parts: Parts,
        gpus: list[Gpu] | None = None,
    ) -> None:
        self.pattern = pattern
        self.options = options
        self.progress = progress
        self.parts = parts
        self.run_id = options.run_id or new_run_id(pattern.pattern)
        self.run_dir = options.runs_dir / self.run_id
        self.tools_root = options.tools_root or pattern.root
        self.supervisor = Supervisor()
        params = pattern.resolve_params(options.profile, dict(options.overrides))
        names = options.implementations or pattern.selected(params)
        unknown = [n for n in names if n not in pattern.implementations]
        if unknown:
            known = ", ".join(pattern.implementations)
            raise LookupError(
                f"--impl {unknown[0]}: {pattern.pattern} has no such implementation ({known})"
            )
        pattern, names, self.variant_params = expand(pattern, names, params)
        self.pattern = pattern
        self.names = names
        self.open_loop = params["load_model"] == "open-loop"
        self.slo = slo_.Slo.parse(str(params["slo"])) if params["slo"] else None
        self.find_max = bool(params["find_max"])
        if self.find_max and self.slo is None:
            raise LookupError("--param find_max=true needs an SLO (--param slo=...)")
        self.rates: list[float | None] = (
            list(rate_list(str(params["rates"])) or [float(params["rate"])])
            if self.open_loop
            else [None]
        )
        #: Implementations with a rate limit (`admits_rps`) are also measured at ADMISSION_FACTOR
        #: times it, where the report checks what they admitted (unless a swept rate is that).
        self.admission: dict[str, float] = {}
        if self.open_loop and not self.find_max:
            values = template_values(pattern, params)
            for name in names:
                limit = pattern.admits_rps(name, {**values, **self.variant_params.get(name, {})})
                if limit is not None and ADMISSION_FACTOR * limit not in self.rates:
                    self.admission[name] = ADMISSION_FACTOR * limit
        self.budget: Budget = plan_budget(
            params, len(names), len(self.rates), extra_points=len(self.admission)
        )
        self.params = {**params, **self.budget.changes}
        self.trials = int(self.params["trials"])
        self.engine_name = str(self.params["engine"])
        self.engine = parts.engines[self.engine_name]
        self.failures: dict[str, ImplFailed] = {}
        self.gpus = find_gpus() if gpus is None else gpus
        self.deploy = Deployment(
            pattern=pattern,
            probes=parts.probes,
            cpus=options.cpusets,
            port_offset=options.port_offset,
            run_dir=self.run_dir,
            supervisor=self.supervisor,
            gpus=self.gpus,
            run_params=self.params,
        )
        self.values = self.deploy.values(self.params, None)
        try:
            self.tables = {
                n: pattern.engine_table(self.engine_name, self._values(n), n) for n in names
            }
        except ValidationError as e:
            raise CatalogError(
                f"{pattern.pattern}: scenario.{self.engine_name}.{first_error(e)}"
            ) from None

    def _params(self, name: str) -> Mapping[str, ParamValue]:
        """The run's parameters, with a variant's own values (bench/variants.py) in place."""
        return {**self.params, **self.variant_params.get(name, {})}

    def _values(self, name: str) -> dict[str, object]:
        return self.deploy.values(self._params(name), None)

    # ---- steps --------------------------------------------------------------------------------

    def _build_all(self) -> None:
        log = self.run_dir / "logs" / "build.log"
        try:
            for support in self.pattern.support.values():
                if support.build is not None:
                    build(support.build, self.pattern.root, log)
            self.engine.build(self.tools_root, log)
        except (ImplFailed, LoadError) as e:
            tail = e.stderr_tail if isinstance(e, ImplFailed) else None
            self.failures.update(dict.fromkeys(self.names, ImplFailed(f"harness build: {e}", tail)))
            return
        for name in self.names:
            step = self.pattern.implementations[name].build
            if step is not None:
                try:
                    build(step, self.pattern.root, log)
                except ImplFailed as e:
                    self.failures[name] = e

    def _verify(self, name: str) -> list[str]:
        if self.pattern.vectors is None or not self.options.verify:
            return []
        try:
            vectors = load_vectors(self.pattern.folder / self.pattern.vectors)
        except VectorsError as e:
            raise ImplFailed(str(e)) from None
        self.progress.phase(name, "verifying")
        started = self.deploy.start(name, {**self._params(name), **vectors.params}, "verify")
        try:
            return self.deploy.verify(name, vectors)
        except VectorsError as e:
            raise ImplFailed(f"{self.pattern.folder / self.pattern.vectors}: {e}") from None
        finally:
            self.deploy.stop(started)

    def _measurement(self) -> Measurement:
        return Measurement(
            deployment=self.deploy,
            supervisor=self.supervisor,
            engine=self.engine,
            tables=self.tables,
            params=self.params,
            params_of={n: self._params(n) for n in self.variant_params},
            loadgen_cpus=self.options.cpusets.loadgen,
            logs=self.run_dir / "logs",
            tools_root=self.tools_root,
            server_latency_metric=self.pattern.scenario.server_latency_metric,
            phase=self.progress.phase,
            advance=self.progress.advance,
        )

    def _studies(self) -> list[Study]:
        """The pattern's studies that are switched on, after the services (nothing else runs)."""
        if not self.options.studies:
            return []
        done: list[Study] = []
        for name, (kind, spec) in self.pattern.study_tables(self.values).items():
            self.progress.phase(name, "starting")
            context = StudyContext(
                root=self.pattern.root,
                folder=self.pattern.folder,
                params=self.params,
                cpus=list(self.options.cpusets.system),
                workdir=self.run_dir / "studies" / name,
                say=self._say(name),
            )
            done.append(self.parts.studies[kind].run(name, spec, context))
        return done

    def _admission_points(
        self, measurement: Measurement, passed: list[str], points: dict[str, list[LoadPoint]]
    ) -> None:
        """The rate-limited implementations at ADMISSION_FACTOR × their limit, interleaved where
        several share that rate, each point in its place among the swept ones."""
        by_rate: dict[float, list[str]] = {}
        for name, rate in self.admission.items():
            if name in passed and name not in self.failures:
                by_rate.setdefault(rate, []).append(name)
        for rate, names in sorted(by_rate.items()):
            found = sweep(measurement, names, [rate], self.trials, self.failures)
            for name, extra in found.items():
                points[name] = sorted(points.get(name, []) + extra,
                                      key=lambda p: p.target_rps or 0.0)  # fmt: skip

    def _say(self, name: str) -> Callable[[str], None]:
        return lambda text: self.progress.phase(name, text)

    def execute(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        problems: dict[str, list[str]] = {}
        points: dict[str, list[LoadPoint]] = {}
        searches: dict[str, SloSearch | None] = {}
        with self.supervisor.running():
            try:
                for name in self.names:
                    self.progress.phase(name, "building")
                self._build_all()
                for name in self.names:
                    if name not in self.failures:
                        try:
                            problems[name] = self._verify(name)
                        except ImplFailed as e:
                            self.failures[name] = e
                passed = [n for n in self.names if n not in self.failures and not problems.get(n)]
                measurement = self._measurement()
                if self.find_max:
                    assert self.slo is not None
                    for name in passed:
                        points[name], searches[name] = search(
                            measurement, name, self.slo, self.trials, self.failures
                        )
                else:
                    points = sweep(measurement, passed, self.rates, self.trials, self.failures)
                    self._admission_points(measurement, passed, points)
            finally:
                self.deploy.stop_run_scoped()
        studies = self._studies()
        results = [self._result(n, problems, points, searches) for n in self.names]
        for impl in results:
            self.progress.phase(impl.name, impl.status)
        result = RunResult(
            run_id=self.run_id,
            created_at=datetime.now(UTC),
            scenario=self._scenario(),
            environment=capture(self.pattern.root, self.options.cpusets).model_copy(
                update={"gpus": [g.name for g in self.gpus]}
            ),
            implementations=results,
            studies=studies,
        )
        save_run(result, self.run_dir)
        return result

    # ---- the result ---------------------------------------------------------------------------

    def _scenario(self) -> Scenario:
        p = self.params
        return Scenario(
            pattern=self.pattern.pattern,
            profile=self.options.profile,
            engine=self.engine_name,
            engine_spec=self._engine_spec(),
            load_model="open-loop" if self.open_loop else "closed-loop",
            arrival=("poisson" if p["arrival"] == "poisson" else "constant")
            if self.open_loop
            else None,
            rates=[r for r in self.rates if r is not None],
            trials=self.trials,
            slo=self.slo.describe() if self.slo else None,
            params=p,
            notes=self.budget.notes,
            server_latency_metric=self.pattern.scenario.server_latency_metric,
            server_latency_parts=self.pattern.scenario.server_latency_parts,
            server_histograms=self.pattern.scenario.server_histograms,
            baseline=self.pattern.scenario.baseline,
            per_request=[
                str(render_table(c, self.values)) for c in self.pattern.scenario.per_request
            ],
        )

    def _engine_spec(self) -> dict[str, object]:
        """The engine's table; `{"by_implementation": {...}}` when implementations differ."""
        dumps = {n: t.model_dump(mode="json") for n, t in self.tables.items()}
        first = next(iter(dumps.values()))
        if all(d == first for d in dumps.values()):
            return first
        return {"by_implementation": dumps}

    def _knee(self, points: list[LoadPoint]) -> float | None:
        if self.slo is None or len(points) < 2:
            return None
        found = slo_.knee([slo_point(p, self.slo) for p in points], self.slo)
        return found.rate if found is not None else None

    def _result(
        self,
        name: str,
        problems: dict[str, list[str]],
        points: dict[str, list[LoadPoint]],
        searches: dict[str, SloSearch | None],
    ) -> ImplementationResult:
        impl = self.pattern.implementations[name]
        base = ImplementationResult(
            name=name,
            language=impl.language,
            status="ok",
            points=points.get(name, []),
            device=self.deploy.device(name),
            labels=impl.labels,
            admits_rps=self.pattern.admits_rps(name, self._values(name)),
        )
        if name in self.failures:
            e = self.failures[name]
            return base.model_copy(
                update={"status": "failed", "error": str(e), "stderr_tail": e.stderr_tail}
            )
        if problems.get(name):
            return base.model_copy(
                update={
                    "status": "verify_failed",
                    "error": f"{len(problems[name])} test vector(s) answered wrongly",
                    "verify_problems": problems[name],
                    "points": [],
                }
            )
        return base.model_copy(
            update={"knee_rps": self._knee(base.points), "search": searches.get(name)}
        )
