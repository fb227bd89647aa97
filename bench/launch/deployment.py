"""A pattern's topology for one run: which processes start, when, on which CPUs and ports.

- An implementation starts with the support processes it `needs`, and no other.
- A support with `scope = "trial"` starts afresh with every trial (and for the vectors), as the
  implementation does; one with `scope = "run"` (a database) starts once, the first time an
  implementation needs it, runs its `setup` commands once it is ready, its `reset` commands
  before every trial of an implementation that needs it, and stops when the run ends.
- Commands are rendered from system.toml with the phase's parameters; ports are shifted by the
  port offset; the system gets the system CPU set, supports (unless `cpus = "system"`: part of
  the system measured) and tools the generator's; a process
  that asked for a GPU gets one when the machine has one (`bench.launch.devices`).
- Readiness goes through the process's probe (`bench.launch.probes`).

Every failure is an ImplFailed carrying what happened and the tail of the process's output, so
the runner can fail one implementation and go on with the others.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from bench.catalog import (
    Build,
    Implementation,
    KindTable,
    Pattern,
    Support,
    template_values,
)
from bench.launch.devices import Gpu, assign
from bench.launch.probes import Probe
from bench.launch.supervisor import (
    LaunchError,
    LaunchSpec,
    RunningProcess,
    Supervisor,
    exit_text,
    tail,
)
from bench.launch.verify import Vectors
from bench.models import CpuSets, ParamValue
from bench.templates import render, render_table

HOST = "127.0.0.1"
COMMAND_TIMEOUT_S = 120.0


class ImplFailed(Exception):
    """One implementation cannot go on: why, and the tail of its output."""

    def __init__(self, message: str, stderr_tail: str | None = None) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


def build(step: Build, root: Path, log_path: Path) -> None:
    """Run a build command; raise ImplFailed with its output's tail when it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        done = subprocess.run(
            step.command, cwd=root / step.dir, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise ImplFailed(
            f"build failed: `{' '.join(step.command)}` exited with {done.returncode}",
            tail(log_path),
        )


@dataclass
class Started:
    """What one trial (or the vectors) started: the implementation and its trial supports."""

    impl: RunningProcess | None = None
    supports: list[RunningProcess] = field(default_factory=list)

    def system(self) -> RunningProcess:
        assert self.impl is not None, "the implementation did not start"
        return self.impl


class Deployment:
    """Starts a pattern's processes under one Supervisor, following its topology."""

    def __init__(
        self,
        *,
        pattern: Pattern,
        probes: Mapping[str, Probe],
        cpus: CpuSets,
        port_offset: int,
        run_dir: Path,
        supervisor: Supervisor,
        gpus: Sequence[Gpu] = (),
        run_params: Mapping[str, ParamValue] | None = None,
    ) -> None:
        self.pattern = pattern
        self.probes = probes
        self.cpus = cpus
        self.port_offset = port_offset
        self.run_dir = run_dir
        self.supervisor = supervisor
        self.gpus = list(gpus)
        #: What run-scoped supports start with, whatever phase starts them first (the vectors'
        #: parameters apply to what starts afresh for them, not to a database kept for the run).
        self.run_params = run_params
        self._run_scoped: dict[str, RunningProcess] = {}
        self._run_failed: dict[str, ImplFailed] = {}

    # ---- naming --------------------------------------------------------------------------

    def ports(self, ports: Sequence[int]) -> list[int]:
        return [p + self.port_offset for p in ports]

    def port(self, name: str) -> int:
        return self.ports([self.pattern.implementations[name].port])[0]

    def values(self, params: Mapping[str, ParamValue], port: int | None) -> dict[str, object]:
        """What `{placeholders}` in the pattern's commands stand for, with this run's ports."""
        return template_values(
            self.pattern,
            params,
            port=port,
            port_offset=self.port_offset,
            python=sys.executable,
            run_dir=self.run_dir,
        )

    def device(self, name: str) -> str | None:
        """The device an implementation that asked for a GPU gets ("cpu" without one)."""
        return assign(self.pattern.implementations[name].gpu, self.gpus)[1]

    def metrics_url(self, name: str) -> str | None:
        endpoint = self.pattern.implementations[name].metrics_endpoint()
        if endpoint is None:
            return None
        port = self.ports([endpoint.port])[0] if endpoint.port is not None else self.port(name)
        return f"http://{HOST}:{port}{endpoint.path}"

    def support_metrics(self, name: str) -> dict[str, str]:
        """The /metrics URLs of the supports `name` needs that serve metrics, by support."""
        urls: dict[str, str] = {}
        for support in self.pattern.implementations[name].needs:
            spec = self.pattern.support[support]
            if spec.metrics is not None:
                port = self.ports([spec.scraped_port()])[0]
                urls[support] = f"http://{HOST}:{port}{spec.metrics.path}"
        return urls

    def needs(self, name: str, scope: str) -> list[str]:
        impl = self.pattern.implementations[name]
        return [s for s in impl.needs if self.pattern.support[s].scope == scope]

    # ---- starting ------------------------------------------------------------------------

    def _probe(self, member: Support | Implementation) -> tuple[Probe, BaseModel]:
        """A process's probe and its table, rendered with the run's parameters (a table may
        name `{root}` or a parameter, as a probe's `header_commands` do)."""
        probe = self.probes[member.probe.kind]
        table = render_table(member.probe.rest(), self.values(self.run_params or {}, None))
        return probe, probe.spec_model.model_validate(table)

    def _launch(
        self,
        name: str,
        member: Support | Implementation,
        command: list[str],
        ports: list[int],
        cpus: list[int],
        phase: str,
        probe_port: int | None = None,
    ) -> RunningProcess:
        probe, spec = self._probe(member)
        probed = probe_port if probe_port is not None else ports[0]
        env, _ = assign(member.gpu, self.gpus)
        launch = LaunchSpec(
            name=name,
            command=command,
            cwd=self.pattern.root,
            cpus=cpus,
            ports=ports,
            ready=lambda: probe.ready(spec, HOST, probed),
            ready_what=f"{_describe(member.probe)} on {HOST}:{probed}",
            ready_timeout_s=member.ready_timeout_s,
            log_path=self.run_dir / "logs" / f"{name}.{phase}.log",
            env=env,
        )
        return self.supervisor.start(launch)

    def _start_support(
        self, name: str, params: Mapping[str, ParamValue], phase: str
    ) -> RunningProcess:
        support = self.pattern.support[name]
        ports = self.ports(support.ports)
        command = render(support.command, self.values(params, ports[0]))
        try:
            cpus = self.cpus.system if support.cpus == "system" else self.cpus.support
            probe_port = self.ports([support.probe_port])[0] if support.probe_port else None
            return self._launch(name, support, command, ports, cpus, phase, probe_port)
        except LaunchError as e:
            raise ImplFailed(f"support process {e}", e.stderr_tail) from None

    def _commands(self, name: str, which: str, params: Mapping[str, ParamValue]) -> None:
        support = self.pattern.support[name]
        log = self.run_dir / "logs" / f"{name}.{which}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        values = self.values(params, self.ports(support.ports)[0])
        for template in support.setup if which == "setup" else support.reset:
            command = render(template, values)
            with log.open("ab") as out:
                try:
                    done = subprocess.run(
                        command, cwd=self.pattern.root, stdout=out, stderr=subprocess.STDOUT,
                        timeout=COMMAND_TIMEOUT_S, check=False,
                    )  # fmt: skip
                except (OSError, subprocess.TimeoutExpired) as e:
                    raise ImplFailed(
                        f"support {name}: {which} `{' '.join(command)}`: {e}"
                    ) from None
            if done.returncode != 0:
                raise ImplFailed(
                    f"support {name}: {which} `{' '.join(command)}` exited with {done.returncode}",
                    tail(log),
                )

    def prepare(self, name: str, params: Mapping[str, ParamValue]) -> None:
        """The run-scoped supports an implementation needs: started once, then reset."""
        params = self.run_params if self.run_params is not None else params
        for support in self.needs(name, "run"):
            if support in self._run_failed:
                raise self._run_failed[support]
            if support not in self._run_scoped:
                try:
                    self._run_scoped[support] = self._start_support(support, params, "run")
                    self._commands(support, "setup", params)
                except ImplFailed as e:
                    self._run_failed[support] = e
                    raise
            self._commands(support, "reset", params)

    def start(self, name: str, params: Mapping[str, ParamValue], phase: str) -> Started:
        """An implementation and its trial-scoped supports, each ready."""
        self.prepare(name, params)
        started = Started()
        try:
            for support in self.needs(name, "trial"):
                started.supports.append(self._start_support(support, params, phase))
            impl = self.pattern.implementations[name]
            port = self.port(name)
            values = self.values(params, port)
            ports = [port]
            endpoint = impl.metrics_endpoint()
            if endpoint is not None and endpoint.port is not None:
                values["metrics_port"] = self.ports([endpoint.port])[0]
                ports.append(int(str(values["metrics_port"])))
            command = render([*impl.command, *self.pattern.args], values)
            try:
                started.impl = self._launch(name, impl, command, ports, self.cpus.system, phase)
            except LaunchError as e:
                raise ImplFailed(str(e), e.stderr_tail) from None
        except BaseException:
            self.stop(started)
            raise
        return started

    def verify(self, name: str, vectors: Vectors) -> list[str]:
        probe, spec = self._probe(self.pattern.implementations[name])
        return probe.verify(spec, HOST, self.port(name), vectors)

    def casualties(self, name: str, started: Started) -> list[str]:
        """The supports `name` uses that have exited, one line each with their last output.

        A run-scoped one that died is failed for the rest of the run (its state is gone); a
        trial-scoped one starts afresh with the next trial anyway.
        """
        found: list[str] = []
        run_scoped = [(s, self._run_scoped[s]) for s in self.needs(name, "run")
                      if s in self._run_scoped]  # fmt: skip
        for support, proc in [(p.spec.name, p) for p in started.supports] + run_scoped:
            code = proc.exit_code()
            if code is None:
                continue
            last = proc.stderr_tail().splitlines()[-1:]
            found.append(
                f"support {support} (pid {proc.pid}) {exit_text(code)} during the trial"
                + (f"; its last output: {last[0]}" if last else "")
            )
            if self._run_scoped.get(support) is proc:
                del self._run_scoped[support]
                self.supervisor.stop(proc)
                self._run_failed[support] = ImplFailed(found[-1], proc.stderr_tail())
        return found

    def system_parts(self, name: str, started: Started) -> dict[str, RunningProcess]:
        """The supports of `name` that are part of the system measured (`cpus = "system"`),
        running now: the trial's own and the run's, by name."""
        parts = {p.spec.name: p for p in started.supports}
        parts |= {s: self._run_scoped[s] for s in self.needs(name, "run") if s in self._run_scoped}
        return {n: p for n, p in parts.items() if self.pattern.support[n].cpus == "system"}

    def stop(self, started: Started) -> None:
        if started.impl is not None:
            self.supervisor.stop(started.impl)
        for proc in started.supports:
            self.supervisor.stop(proc)

    def stop_run_scoped(self) -> None:
        while self._run_scoped:
            _, proc = self._run_scoped.popitem()
            self.supervisor.stop(proc)


def _describe(probe: KindTable) -> str:
    rest = probe.rest()
    detail = rest.get("path") or rest.get("service") or ""
    return f"{probe.kind} probe" + (f" {detail}" if detail else "")
