"""How a pattern's processes are built and started for one phase of a run (verify, measure):
commands rendered from its system.toml with the phase's parameters, ports (shifted by the port
offset), the CPU set of each role, and a log per process and phase.

Every failure is an ImplFailed carrying what happened and the tail of the process's output, so
the runner can fail one implementation and go on with the others.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.catalog import Build, Pattern, render
from bench.launch.supervisor import LaunchError, LaunchSpec, RunningProcess, Supervisor, tail
from bench.models import CpuSets, ParamValue

HOST = "127.0.0.1"


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


class Deployment:
    """Starts a pattern's support processes and implementations under one Supervisor."""

    def __init__(
        self,
        *,
        pattern: Pattern,
        cpus: CpuSets,
        port_offset: int,
        run_dir: Path,
        supervisor: Supervisor,
    ) -> None:
        self.pattern = pattern
        self.cpus = cpus
        self.port_offset = port_offset
        self.run_dir = run_dir
        self.supervisor = supervisor

    def ports(self, ports: list[int]) -> list[int]:
        return [p + self.port_offset for p in ports]

    def values(self, params: Mapping[str, ParamValue], port: int | None) -> dict[str, object]:
        """What `{placeholders}` in the pattern's commands stand for."""
        values: dict[str, object] = {**params, "python": sys.executable, "root": self.pattern.root}
        values["port"] = port if port is not None else ""
        for name, support in self.pattern.support.items():
            ports = self.ports(support.ports)
            values[f"{name}_urls"] = ",".join(f"http://{HOST}:{p}" for p in ports)
            values[f"{name}_addrs"] = ",".join(f"{HOST}:{p}" for p in ports)
        return values

    def start_supports(self, params: Mapping[str, ParamValue], phase: str) -> list[RunningProcess]:
        started = []
        for name, support in self.pattern.support.items():
            ports = self.ports(support.ports)
            spec = LaunchSpec(
                name=name,
                command=render(support.command, self.values(params, ports[0])),
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
                raise ImplFailed(f"support process {e}", e.stderr_tail) from None
        return started

    def start_impl(self, name: str, params: Mapping[str, ParamValue], phase: str) -> RunningProcess:
        impl = self.pattern.implementations[name]
        port = self.ports([impl.port])[0]
        spec = LaunchSpec(
            name=name,
            command=render([*impl.command, *self.pattern.args], self.values(params, port)),
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
            raise ImplFailed(str(e), e.stderr_tail) from None

    def stop(self, *procs: RunningProcess) -> None:
        for proc in procs:
            self.supervisor.stop(proc)
