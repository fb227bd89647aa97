"""One run of one pattern: build; verify every implementation; then measure the ones that pass,
in trials interleaved across implementations (A B A B …) at each target rate — or search for the
highest rate each one serves within the SLO.

Each trial starts the implementation and its support processes afresh (as pyperf runs each
measurement in a fresh worker process), measures one window, and stops them. A failure of one
implementation (build, launch, wrong answers, crash) is recorded on it with the tail of its
output, and the others go on. Every process started here is stopped before the next trial and,
on Ctrl-C, before the harness exits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bench.catalog import Build, Pattern, rate_list, render
from bench.collect import window as collectors
from bench.collect.environment import capture
from bench.collect.prometheus import histogram_quantile_bounds
from bench.engines import loadgen as loadgen_engine
from bench.engines import locust as locust_engine
from bench.engines.spec import LoadError, LoadSpec, LocustScenario
from bench.launch.deployment import HOST, Deployment, ImplFailed, build
from bench.launch.supervisor import Supervisor
from bench.launch.verify import VectorsError, check, load_vectors
from bench.models import (
    CpuSets,
    ImplementationResult,
    InProcessStudy,
    LoadPoint,
    RunResult,
    Scenario,
    SloSearch,
    Trial,
)
from bench.stats import headroom
from bench.stats import slo as slo_
from bench.stats.summary import make_point, slo_point
from bench.store import save_run
from bench.studies import pools as inprocess

LOADGEN_BUILD = Build(dir="go", command=["go", "build", "-o", "bin/loadgen", "./cmd/loadgen"])
#: Upper bound of the max-rate search (requests/s); it starts at the `rate` parameter.
SEARCH_MAX = 200_000.0


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


def new_run_id(pattern: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{pattern}"


class PatternRun:
    """The state of one run; `execute()` does the work and returns the result."""

    def __init__(self, pattern: Pattern, options: RunOptions, progress: Progress) -> None:
        self.pattern = pattern
        self.options = options
        self.progress = progress
        self.params = pattern.resolve_params(options.profile, dict(options.overrides))
        self.run_id = options.run_id or new_run_id(pattern.pattern)
        self.run_dir = options.runs_dir / self.run_id
        self.cpus = options.cpusets
        self.tools_root = options.tools_root or pattern.root
        self.supervisor = Supervisor()
        names = options.implementations or list(pattern.implementations)
        unknown = [n for n in names if n not in pattern.implementations]
        if unknown:
            known = ", ".join(pattern.implementations)
            raise LookupError(
                f"--impl {unknown[0]}: {pattern.pattern} has no such implementation ({known})"
            )
        self.names = names
        p = self.params
        self.open_loop = p["load_model"] == "open-loop"
        self.trials = int(p["trials"])
        self.slo = slo_.Slo.parse(str(p["slo"])) if p["slo"] else None
        self.find_max = bool(p["find_max"])
        if self.find_max and self.slo is None:
            raise LookupError("--param find_max=true needs an SLO (--param slo=...)")
        self.rates: list[float | None] = (
            list(rate_list(str(p["rates"])) or [float(p["rate"])]) if self.open_loop else [None]
        )
        self.failures: dict[str, ImplFailed] = {}
        self.deploy = Deployment(
            pattern=pattern,
            cpus=options.cpusets,
            port_offset=options.port_offset,
            run_dir=self.run_dir,
            supervisor=self.supervisor,
        )

    # ---- verify -----------------------------------------------------------------------------

    def _verify(self, name: str) -> list[str]:
        if self.pattern.vectors is None or not self.options.verify:
            return []
        try:
            vectors = load_vectors(self.pattern.folder / self.pattern.vectors)
        except VectorsError as e:
            raise ImplFailed(str(e)) from None
        self.progress.phase(name, "verifying")
        params = {**self.params, **vectors.params}
        supports = self.deploy.start_supports(params, "verify")
        try:
            proc = self.deploy.start_impl(name, params, "verify")
            try:
                return check(HOST, proc.spec.ports[0], vectors)
            finally:
                self.deploy.stop(proc)
        finally:
            self.deploy.stop(*supports)

    # ---- measure ----------------------------------------------------------------------------

    def _load_spec(self, name: str, base_url: str, rate: float | None, index: int) -> LoadSpec:
        p = self.params
        paced = p.get("user_rate")
        label = f"{rate:g}" if rate is not None else "closed"
        return LoadSpec(
            host=base_url,
            load_model="open-loop" if self.open_loop else "closed-loop",
            duration_s=float(p["duration_s"]),
            warmup_s=float(p["warmup_s"]),
            cpus=self.cpus.loadgen,
            workdir=self.run_dir / "logs" / name / f"rate-{label}-trial-{index}",
            rate=rate,
            arrival=str(p["arrival"]),
            seed=int(p.get("seed", 1)) + index,
            users=int(p["users"]),
            spawn_rate=float(p["spawn_rate"]),
            paced_rps=float(p["users"]) * float(paced)
            if isinstance(paced, int | float) and not isinstance(paced, bool) and paced > 0
            else None,
            locust=LocustScenario(
                locustfile=self.pattern.root / self.pattern.scenario.locustfile,
                args=render(self.pattern.scenario.args, self.deploy.values(p, None)),
                closed_loop_user=self.pattern.scenario.closed_loop_user,
                open_loop_user=self.pattern.scenario.open_loop_user,
            ),
            loadgen_path=render([self.pattern.scenario.loadgen_path], self.deploy.values(p, None))[
                0
            ],
        )

    def _trial(self, name: str, rate: float | None, index: int) -> Trial:
        """Start the implementation afresh, measure one window, stop it."""
        p = self.params
        window_s = float(p["warmup_s"]) + float(p["duration_s"])
        supports = self.deploy.start_supports(p, "measure")
        try:
            proc = self.deploy.start_impl(name, p, "measure")
            try:
                base_url = f"http://{HOST}:{proc.spec.ports[0]}"
                window = collectors.SystemWindow(proc, f"{base_url}/metrics")
                spec = self._load_spec(name, base_url, rate, index)
                at = f"{rate:g} req/s, " if rate is not None else ""
                self.progress.phase(name, f"{at}trial {index + 1}/{self.trials}", window_s)
                advance = lambda done: self.progress.advance(name, done)  # noqa: E731
                try:
                    if p["engine"] == "loadgen":
                        binary = self.tools_root / "go" / "bin" / "loadgen"
                        load = loadgen_engine.run(binary, spec, self.supervisor, window, advance)
                    else:
                        load = locust_engine.run(spec, self.supervisor, window, advance)
                except collectors.SystemGone as e:
                    raise ImplFailed(str(e), e.stderr_tail) from None
                code = proc.exit_code()
                if code is not None:
                    raise ImplFailed(
                        f"exited with status {code} during the run", proc.stderr_tail()
                    )
                if window.process is None:
                    raise ImplFailed("the measured window never closed", proc.stderr_tail())
            finally:
                self.deploy.stop(proc)
        finally:
            self.deploy.stop(*supports)
        reasons = headroom.invalid_reasons(load, poisson=self.params["arrival"] == "poisson")
        return Trial(
            index=index,
            load=load,
            process=window.process,
            server_metrics=window.metrics,
            server_metrics_error=window.metrics_error,
            server_latency_ms=self._server_latency(window.metrics),
            valid=not reasons,
            invalid_reasons=reasons,
        )

    def _server_latency(self, metrics: dict[str, float]) -> dict[str, float]:
        """p50 and p99 of the system's own latency histogram, as bucket bounds in ms."""
        name = self.pattern.scenario.server_latency_metric
        if name is None:
            return {}
        out: dict[str, float] = {}
        for key, q in (("p50", 0.5), ("p99", 0.99)):
            bounds = histogram_quantile_bounds(metrics, name, q)
            if bounds is not None and not math.isinf(bounds[1]):
                out[f"{key}_low"], out[f"{key}_high"] = bounds[0] * 1000.0, bounds[1] * 1000.0
        return out

    def _sweep(self, names: list[str]) -> dict[str, list[LoadPoint]]:
        """Every rate, trials interleaved across implementations; a failed one drops out."""
        points: dict[str, list[LoadPoint]] = {n: [] for n in names}
        for rate in self.rates:
            trials: dict[str, list[Trial]] = {n: [] for n in names}
            for index, name in slo_.interleaved(names, self.trials):
                if name in self.failures:
                    continue
                try:
                    trials[name].append(self._trial(name, rate, index))
                except ImplFailed as e:
                    self.failures[name] = e
                except LoadError as e:
                    self.failures[name] = ImplFailed(f"load engine: {e}")
            for name in names:
                if trials[name]:
                    points[name].append(make_point(rate, trials[name]))
        return points

    def _search(self, name: str) -> tuple[list[LoadPoint], SloSearch | None]:
        """The highest rate meeting the SLO: exponential growth, then bisection."""
        assert self.slo is not None
        measured: list[LoadPoint] = []

        def measure(rate: float) -> slo_.Point:
            trials = [self._trial(name, rate, index) for index in range(self.trials)]
            measured.append(make_point(rate, trials))
            return slo_point(measured[-1], self.slo)  # type: ignore[arg-type]

        try:
            start = float(self.params["rate"])
            found = slo_.find_max_rate(measure, self.slo, start=start, max_rate=SEARCH_MAX)
        except ImplFailed as e:
            self.failures[name] = e
            return sorted(measured, key=lambda p: p.target_rps or 0.0), None
        except LoadError as e:
            self.failures[name] = ImplFailed(f"load engine: {e}")
            return sorted(measured, key=lambda p: p.target_rps or 0.0), None
        search = SloSearch(
            slo=self.slo.describe(),
            best_rate=found.best_rate,
            first_failing_rate=found.first_failing_rate,
            limited_by_generator=found.limited_by_generator,
            reason=found.reason,
        )
        return sorted(measured, key=lambda p: p.target_rps or 0.0), search

    # ---- the run ----------------------------------------------------------------------------

    def _build_all(self) -> None:
        log = self.run_dir / "logs" / "build.log"
        try:
            for support in self.pattern.support.values():
                if support.build is not None:
                    build(support.build, self.pattern.root, log)
            if self.params["engine"] == "loadgen":
                build(LOADGEN_BUILD, self.tools_root, log)
        except ImplFailed as e:
            failure = ImplFailed(f"harness build: {e}", e.stderr_tail)
            self.failures.update(dict.fromkeys(self.names, failure))
            return
        for name in self.names:
            step = self.pattern.implementations[name].build
            if step is not None:
                try:
                    build(step, self.pattern.root, log)
                except ImplFailed as e:
                    self.failures[name] = e

    def _knee(self, points: list[LoadPoint]) -> float | None:
        if self.slo is None or len(points) < 2:
            return None
        found = slo_.knee([slo_point(p, self.slo) for p in points], self.slo)
        return found.rate if found is not None else None

    def execute(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        problems: dict[str, list[str]] = {}
        points: dict[str, list[LoadPoint]] = {}
        searches: dict[str, SloSearch | None] = {}
        with self.supervisor.running():
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
            if self.find_max:
                for name in passed:
                    points[name], searches[name] = self._search(name)
            else:
                points = self._sweep(passed)
        study = self._inprocess()
        results = [self._result(n, problems, points, searches) for n in self.names]
        for impl in results:
            self.progress.phase(impl.name, impl.status)
        result = RunResult(
            run_id=self.run_id,
            created_at=datetime.now(UTC),
            scenario=Scenario(
                pattern=self.pattern.pattern,
                profile=self.options.profile,
                engine="loadgen" if self.params["engine"] == "loadgen" else "locust",
                load_model="open-loop" if self.open_loop else "closed-loop",
                arrival="poisson"
                if self.params["arrival"] == "poisson"
                else "constant"
                if self.open_loop
                else None,
                rates=[r for r in self.rates if r is not None],
                trials=self.trials,
                slo=self.slo.describe() if self.slo else None,
                locustfile=self.pattern.scenario.locustfile,
                params=self.params,
            ),
            environment=capture(self.pattern.root, self.cpus),
            implementations=results,
            inprocess=study,
        )
        save_run(result, self.run_dir)
        return result

    def _inprocess(self) -> InProcessStudy | None:
        """The pattern's in-process study, after the services (nothing else running)."""
        spec = self.pattern.inprocess
        if spec is None or not self.params["inprocess"]:
            return None
        machine = inprocess.Machine(
            root=self.pattern.root,
            spec=spec,
            cpus=self.cpus.system,
            workdir=self.run_dir / "inprocess",
        )
        workers = list(range(1, len(self.cpus.system) + 1))
        self.progress.phase("in-process", "starting")
        return inprocess.run_study(
            machine,
            inprocess.StudyParams.from_params(self.params),
            workers,
            lambda text: self.progress.phase("in-process", text),
        )

    def _result(
        self,
        name: str,
        problems: dict[str, list[str]],
        points: dict[str, list[LoadPoint]],
        searches: dict[str, SloSearch | None],
    ) -> ImplementationResult:
        impl = self.pattern.implementations[name]
        measured = points.get(name, [])
        if name in self.failures:
            e = self.failures[name]
            return ImplementationResult(
                name=name,
                language=impl.language,
                status="failed",
                error=str(e),
                stderr_tail=e.stderr_tail,
                points=measured,
            )
        if problems.get(name):
            return ImplementationResult(
                name=name,
                language=impl.language,
                status="verify_failed",
                error=f"{len(problems[name])} test vector(s) answered wrongly",
                verify_problems=problems[name],
            )
        return ImplementationResult(
            name=name,
            language=impl.language,
            status="ok",
            points=measured,
            knee_rps=self._knee(measured),
            search=searches.get(name),
        )
