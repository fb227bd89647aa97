"""Start a system as its own process on its own CPUs, wait until it is ready, stop it, reap it.

Every failure to launch is a LaunchError whose message says what happened (port in use, exit
during start-up, readiness time-out) and carries the tail of the process's stderr, so the caller
can mark one implementation failed and go on with the others.

Processes start in their own session, so a Ctrl-C in the terminal reaches only the harness, which
then stops them (`Supervisor`); stopping signals the whole process group and then kills any
descendant that left it. Should the harness die without stopping them (kill -9), each gets a
parent-death SIGTERM and the harness's watchdog reaps their groups (`bench.launch.reaper`), so
nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from bench.launch.reaper import reap_orphans, registry

STDERR_TAIL_BYTES = 2000
STOP_GRACE_S = 8.0


class LaunchError(Exception):
    """A process that could not be started or made ready."""

    def __init__(self, message: str, stderr_tail: str | None = None) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """How to start one process."""

    name: str
    command: Sequence[str]
    cwd: Path
    cpus: Sequence[int]
    ports: Sequence[int]
    #: Asked until it answers True (or the time-out); None: no readiness to wait for.
    ready: Callable[[], bool] | None
    #: What `ready` asks, for the time-out message (`GET http://127.0.0.1:8081/healthz`).
    ready_what: str = ""
    ready_timeout_s: float
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)


def thread_env(cpus: Sequence[int]) -> dict[str, str]:
    """Runtimes size their thread pools from the machine, not the CPU set: tell them the set."""
    n = str(len(cpus))
    return {
        "GOMAXPROCS": n,
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "PYTHONUNBUFFERED": "1",
    }


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on the port. Like the servers themselves, the probe sets
    SO_REUSEADDR, so connections of a stopped server lingering in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def wait_port_free(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while port_in_use(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tail(path: Path, limit: int = STDERR_TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def exit_text(code: int | None) -> str:
    """`exited with status 3`, or `was killed by SIGKILL` for a negative (signal) code."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class RunningProcess:
    """A started process; `stop()` ends it and every descendant."""

    def __init__(self, spec: LaunchSpec, popen: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.spec = spec
        self.popen = popen
        self._log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def stderr_tail(self) -> str:
        return tail(self.spec.log_path)

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM the group, wait up to grace_s, then SIGKILL what is left; returns the code."""
        descendants = self.tree()[1:]
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(descendants, timeout=2)
        self._log.close()
        for port in self.spec.ports:
            wait_port_free(port, timeout_s=5)
        return self.popen.returncode


def missing_program(command: Sequence[str], cwd: Path, env: dict[str, str]) -> str | None:
    """Why the command's program cannot be run (not there, not executable), None when it can."""
    program = command[0] if command else ""
    if not program:
        return "the command is empty"
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        if not path.exists():
            return f"{path}: no such file (not built?)"
        if not os.access(path, os.X_OK) or path.is_dir():
            return f"{path}: not an executable file"
        return None
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        return f"{program}: not found on PATH"
    return None


#: Run before taskset: the kernel sends the process SIGTERM when the harness dies, however.
PARENT_DEATH = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []


def spawn(spec: LaunchSpec) -> RunningProcess:
    """Start the process; it is not ready yet (`wait_ready`)."""
    env = {**os.environ, **thread_env(spec.cpus), **spec.env}
    problem = missing_program(spec.command, spec.cwd, env)
    if problem is not None:
        raise LaunchError(f"{spec.name}: cannot start: {problem}")
    for port in spec.ports:
        if port_in_use(port):
            raise LaunchError(f"{spec.name}: port {port} on 127.0.0.1 is already in use")
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    log = spec.log_path.open("wb")
    # setpriv and taskset exec the command, so the PID is the system's own; unlike a preexec_fn
    # they are safe while the harness runs threads (the progress display, the samplers).
    pinned = [*PARENT_DEATH, "taskset", "--cpu-list", ",".join(map(str, spec.cpus)), *spec.command]
    try:
        popen = subprocess.Popen(
            pinned,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        log.close()
        raise LaunchError(f"{spec.name}: cannot start {spec.command[0]}: {e.strerror}") from None
    return RunningProcess(spec, popen, log)


def run_owned(
    command: Sequence[str], *, cwd: Path, timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` for a command the harness owns while it runs (a study's pyperf): in its
    own process group, recorded for the watchdog, with a parent-death SIGTERM; killed with its
    group on time-out or interrupt. Raises OSError and TimeoutExpired as `subprocess.run` does."""
    proc = subprocess.Popen(
        [*PARENT_DEATH, *command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    owned = registry()
    owned.add(str(command[0]), proc.pid, ())
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        owned.remove(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_ready(proc: RunningProcess) -> None:
    """Ask the spec's readiness until it answers; stop the process and raise when it cannot."""
    spec, popen = proc.spec, proc.popen
    if spec.ready is None:
        return
    deadline = time.monotonic() + spec.ready_timeout_s
    while not spec.ready():
        code = popen.poll()
        if code is not None:
            proc.stop()
            raise LaunchError(f"{spec.name}: {exit_text(code)} during start-up", proc.stderr_tail())
        if time.monotonic() > deadline:
            proc.stop()
            raise LaunchError(
                f"{spec.name}: not ready ({spec.ready_what}) after {spec.ready_timeout_s:g} s",
                proc.stderr_tail(),
            )
        time.sleep(0.05)


class Supervisor:
    """Owns every process it starts and stops them all on exit, Ctrl-C and SIGTERM included."""

    def __init__(self) -> None:
        self._running: list[RunningProcess] = []
        self._registry = registry()

    def start(self, spec: LaunchSpec) -> RunningProcess:
        """Spawn and wait until ready; the process is owned from the moment it exists (and
        recorded for the watchdog), so an interrupt during its readiness wait stops it too."""
        proc = spawn(spec)
        self._running.append(proc)
        self._registry.add(spec.name, proc.pid, tuple(spec.ports))
        try:
            wait_ready(proc)
        except LaunchError:
            self._forget(proc)
            raise
        return proc

    def _forget(self, proc: RunningProcess) -> None:
        if proc in self._running:
            self._running.remove(proc)
        self._registry.remove(proc.pid)

    def stop(self, proc: RunningProcess) -> int | None:
        code = proc.stop()
        self._forget(proc)
        return code

    def stop_all(self) -> None:
        while self._running:
            self.stop(self._running[-1])
        self._registry.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[Supervisor]:
        """Own processes until the block ends; first stop what a killed harness left behind."""
        for harness, stopped in reap_orphans():
            names = ", ".join(f"{o.name} (pid {o.pid})" for o in stopped)
            print(
                f"patternbench: stopped {len(stopped)} process(es) left by an earlier harness "
                f"(pid {harness}) that ended without stopping them: {names}",
                file=sys.stderr,
            )
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield self
        finally:
            self.stop_all()
            signal.signal(signal.SIGTERM, previous)
