"""One run of one pattern: build, then per implementation verify → warm up → measure → stop.

A failure of one implementation (build, launch, wrong answers, crash mid-run) is recorded on that
implementation with the tail of its output, and the others still run. Every process started here
is stopped before the next phase starts and, on Ctrl-C, before the harness exits.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psutil

from bench import collectors, locust_engine
from bench.catalog import Build, Implementation, Pattern, render
from bench.environment import capture
from bench.launcher import LaunchError, LaunchSpec, RunningProcess, Supervisor, tail
from bench.results import (
    CpuSets,
    ImplementationResult,
    LoadStats,
    ParamValue,
    ProcessStats,
    RunResult,
    Scenario,
    save_run,
)
from bench.verify import VectorsError, check, load_vectors

HOST = "127.0.0.1"


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


class _ImplFailed(Exception):
    def __init__(self, message: str, stderr_tail: str | None = None) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class SystemWindow:
    """The system's side of the measured window: its /metrics and its process tree's CPU/RSS."""

    def __init__(self, proc: RunningProcess, metrics_url: str) -> None:
        self._proc = proc
        self._metrics_url = metrics_url
        self._sampler: collectors.TreeSampler | None = None
        self._before = ""
        self._metrics: dict[str, float] = {}
        self._process: ProcessStats | None = None

    def open(self) -> None:
        try:
            self._before = collectors.scrape(self._metrics_url)
            self._sampler = collectors.TreeSampler(self._proc.pid)
        except (OSError, psutil.NoSuchProcess) as e:
            raise self._failure("opened", e) from None
        self._sampler.start()

    def close(self) -> None:
        assert self._sampler is not None, "close() before open()"
        self._process = self._sampler.stop()
        try:
            self._metrics = collectors.metric_deltas(
                self._before, collectors.scrape(self._metrics_url)
            )
        except OSError as e:
            raise self._failure("closed", e) from None

    def _failure(self, when: str, error: Exception) -> _ImplFailed:
        """A dead process explains a silent /metrics best; give it a moment to be reaped."""
        try:
            code: int | None = self._proc.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            return _ImplFailed(
                f"exited with status {code} during the run", self._proc.stderr_tail()
            )
        return _ImplFailed(
            f"/metrics did not answer when the window {when}: {error}", self._proc.stderr_tail()
        )

    def result(self) -> tuple[ProcessStats, dict[str, float]]:
        if self._process is None:
            raise _ImplFailed("the measured window never closed")
        return self._process, self._metrics


def new_run_id(pattern: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{pattern}"


def build(step: Build, root: Path, log_path: Path) -> None:
    """Run a build command; raise _ImplFailed with its output's tail when it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        done = subprocess.run(
            step.command, cwd=root / step.dir, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise _ImplFailed(
            f"build failed: `{' '.join(step.command)}` exited with {done.returncode}",
            tail(log_path),
        )


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
        self.supervisor = Supervisor()
        names = options.implementations or list(pattern.implementations)
        unknown = [n for n in names if n not in pattern.implementations]
        if unknown:
            known = ", ".join(pattern.implementations)
            raise LookupError(
                f"--impl {unknown[0]}: {pattern.pattern} has no such implementation ({known})"
            )
        self.names = names

    # ---- templating -------------------------------------------------------------------------

    def _values(self, params: Mapping[str, ParamValue], port: int | None) -> dict[str, object]:
        values: dict[str, object] = {**params, "python": sys.executable, "root": self.pattern.root}
        values["port"] = port if port is not None else ""
        for name, support in self.pattern.support.items():
            ports = self._ports(support.ports)
            values[f"{name}_urls"] = ",".join(f"http://{HOST}:{p}" for p in ports)
            values[f"{name}_addrs"] = ",".join(f"{HOST}:{p}" for p in ports)
        return values

    def _ports(self, ports: list[int]) -> list[int]:
        return [p + self.options.port_offset for p in ports]

    # ---- processes --------------------------------------------------------------------------

    def _start_supports(self, params: Mapping[str, ParamValue], phase: str) -> list[RunningProcess]:
        started = []
        for name, support in self.pattern.support.items():
            ports = self._ports(support.ports)
            spec = LaunchSpec(
                name=name,
                command=render(support.command, self._values(params, ports[0])),
                cwd=self.pattern.root,
                cpus=self.cpus.support,
                ports=ports,
                ready_url=f"http://{HOST}:{ports[0]}{support.ready}",
                ready_timeout_s=support.ready_timeout_s,
                log_path=self.run_dir / "logs" / f"{name}.{phase}.log",
            )
            try:
                started.append(self.supervisor.start(spec))
            except LaunchError as e:
                raise _ImplFailed(f"support process {e}", e.stderr_tail) from None
        return started

    def _start_impl(
        self, name: str, impl: Implementation, params: Mapping[str, ParamValue], phase: str
    ) -> RunningProcess:
        port = self._ports([impl.port])[0]
        spec = LaunchSpec(
            name=name,
            command=render([*impl.command, *self.pattern.args], self._values(params, port)),
            cwd=self.pattern.root,
            cpus=self.cpus.system,
            ports=(port,),
            ready_url=f"http://{HOST}:{port}{impl.ready}",
            ready_timeout_s=impl.ready_timeout_s,
            log_path=self.run_dir / "logs" / f"{name}.{phase}.log",
        )
        try:
            return self.supervisor.start(spec)
        except LaunchError as e:
            raise _ImplFailed(str(e), e.stderr_tail) from None

    # ---- phases -----------------------------------------------------------------------------

    def _verify(self, name: str, impl: Implementation) -> list[str]:
        if self.pattern.vectors is None:
            return []
        try:
            vectors = load_vectors(self.pattern.folder / self.pattern.vectors)
        except VectorsError as e:
            raise _ImplFailed(str(e)) from None
        self.progress.phase(name, "verifying")
        params = {**self.params, **vectors.params}
        supports = self._start_supports(params, "verify")
        try:
            proc = self._start_impl(name, impl, params, "verify")
            try:
                return check(HOST, proc.spec.ports[0], vectors)
            finally:
                self.supervisor.stop(proc)
        finally:
            for support in supports:
                self.supervisor.stop(support)

    def _measure(
        self, name: str, impl: Implementation
    ) -> tuple[LoadStats, ProcessStats, dict[str, float]]:
        p = self.params
        warmup, duration = float(p["warmup_s"]), float(p["duration_s"])
        supports = self._start_supports(p, "measure")
        try:
            proc = self._start_impl(name, impl, p, "measure")
            try:
                base_url = f"http://{HOST}:{proc.spec.ports[0]}"
                window = SystemWindow(proc, f"{base_url}/metrics")
                self.progress.phase(name, "warm-up + measure", warmup + duration)
                load = locust_engine.run(
                    locust_engine.LocustSpec(
                        locustfile=self.pattern.root / self.pattern.scenario.locustfile,
                        host=base_url,
                        users=int(p["users"]),
                        spawn_rate=float(p["spawn_rate"]),
                        duration_s=duration,
                        warmup_s=warmup,
                        scenario_args=render(self.pattern.scenario.args, self._values(p, None)),
                        cpus=self.cpus.loadgen,
                        workdir=self.run_dir / "logs" / name,
                        target_rps=_target_rps(p),
                    ),
                    self.supervisor,
                    window,
                    lambda done: self.progress.advance(name, done),
                )
                code = proc.exit_code()
                if code is not None:
                    raise _ImplFailed(
                        f"exited with status {code} during the run", proc.stderr_tail()
                    )
                return load, *window.result()
            finally:
                self.supervisor.stop(proc)
        finally:
            for support in supports:
                self.supervisor.stop(support)

    def _one(self, name: str) -> ImplementationResult:
        impl = self.pattern.implementations[name]
        try:
            problems = self._verify(name, impl)
            if problems:
                return ImplementationResult(
                    name=name,
                    language=impl.language,
                    status="verify_failed",
                    error=f"{len(problems)} test vector(s) answered wrongly",
                    verify_problems=problems,
                )
            load, process, metrics = self._measure(name, impl)
        except _ImplFailed as e:
            return _failed(name, impl, str(e), e.stderr_tail)
        except (locust_engine.LoadError, OSError) as e:
            return _failed(name, impl, f"load engine: {e}", None)
        return ImplementationResult(
            name=name,
            language=impl.language,
            status="ok",
            load=load,
            process=process,
            server_metrics=metrics,
        )

    def _build_all(self) -> dict[str, _ImplFailed]:
        """Build supports and implementations; failures by implementation name."""
        failures: dict[str, _ImplFailed] = {}
        log = self.run_dir / "logs" / "build.log"
        try:
            for support in self.pattern.support.values():
                if support.build is not None:
                    build(support.build, self.pattern.root, log)
        except _ImplFailed as e:
            return dict.fromkeys(self.names, _ImplFailed(f"support {e}", e.stderr_tail))
        for name in self.names:
            step = self.pattern.implementations[name].build
            if step is not None:
                try:
                    build(step, self.pattern.root, log)
                except _ImplFailed as e:
                    failures[name] = e
        return failures

    def execute(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        results: list[ImplementationResult] = []
        with self.supervisor.running():
            for name in self.names:
                self.progress.phase(name, "building")
            failures = self._build_all()
            for name in self.names:
                impl = self.pattern.implementations[name]
                if name in failures:
                    failure = failures[name]
                    results.append(_failed(name, impl, str(failure), failure.stderr_tail))
                else:
                    results.append(self._one(name))
                self.progress.phase(name, results[-1].status)
        result = RunResult(
            run_id=self.run_id,
            created_at=datetime.now(UTC),
            scenario=Scenario(
                pattern=self.pattern.pattern,
                profile=self.options.profile,
                engine="locust",
                load_model="closed-loop",
                locustfile=self.pattern.scenario.locustfile,
                params=self.params,
            ),
            environment=capture(self.pattern.root, self.cpus),
            implementations=results,
        )
        save_run(result, self.run_dir)
        return result


def _failed(
    name: str, impl: Implementation, error: str, stderr_tail: str | None
) -> ImplementationResult:
    return ImplementationResult(
        name=name, language=impl.language, status="failed", error=error, stderr_tail=stderr_tail
    )


def _target_rps(params: Mapping[str, ParamValue]) -> float | None:
    """Offered load when the scenario paces its users (`user_rate` requests/s each)."""
    rate = params.get("user_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        return float(params["users"]) * float(rate)
    return None
