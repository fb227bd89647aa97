"""Nothing outlives the harness: a record of every process group it owns, and the reaping of it.

Three layers, from the fastest to the last resort:

1. each process starts with a parent-death signal (SIGTERM, set by `setpriv --pdeathsig`), so
   the kernel tells it when the harness dies, however it dies;
2. the harness writes the process groups it owns into a record, `<runtime>/<pid>.json`, and a
   watchdog process (`bench.launch.watchdog`, in its own session) holds a pipe from it: when the
   harness dies (kill -9 included) the pipe closes and the watchdog reaps the record — SIGTERM to
   each group, SIGKILL to what is left after the grace time, descendants that left a group too;
3. the next harness start reaps the records of harnesses that no longer exist, in case the
   watchdog died as well, and says what it stopped (a run-scoped database left by a killed
   run gets its SIGTERM, a clean shutdown, before anything binds its port).

A record names each process by PID and start time, so a PID the system has reused since is
never signalled. The runtime folder is `$PATTERNBENCH_RUNTIME_DIR`, by default
`<tmp>/patternbench-<uid>`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psutil

#: How long a reaped group gets between SIGTERM and SIGKILL (the supervisor's stop grace).
REAP_GRACE_S = 8.0


def runtime_dir() -> Path:
    env = os.environ.get("PATTERNBENCH_RUNTIME_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"patternbench-{os.getuid()}"


def started_at(pid: int) -> float | None:
    """The process's start time (psutil's create_time), None when it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(pid: int, started: float) -> bool:
    """True when `pid` is still the process that started at `started` (not a reused PID)."""
    now = started_at(pid)
    return now is not None and abs(now - started) < 0.05 and _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class Owned:
    """One process group the harness owns: its leader's PID (= the group), start time, ports."""

    name: str
    pid: int
    started: float
    ports: tuple[int, ...]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _owned(data: dict[str, Any]) -> list[Owned]:
    out: list[Owned] = []
    for item in data.get("processes", []):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            out.append(
                Owned(
                    name=str(item["name"]),
                    pid=int(item["pid"]),
                    started=float(item["started"]),
                    ports=tuple(int(p) for p in item.get("ports", ())),
                )
            )
    return out


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group(pgid: int) -> list[psutil.Process]:
    """The live processes of the process group `pgid`."""
    members: list[psutil.Process] = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def _ours(o: Owned) -> list[psutil.Process]:
    """What is left of the group `o` leads: its members and their descendants.

    A leader that exited leaves its group behind (its parent-death signal ended it, not its
    children); the kernel does not hand a PID out again while a group still bears it, so the
    members found are ours. A live process with the PID but another start time is a stranger's.
    """
    now = started_at(o.pid)
    if now is not None and abs(now - o.started) >= 0.05:
        return []
    members = _group(o.pid)
    found = {p.pid: p for p in members}
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.update({c.pid: c for c in member.children(recursive=True)})
    return list(found.values())


def reap(path: Path, grace_s: float = REAP_GRACE_S) -> list[Owned]:
    """Stop every process group the record names that still runs; delete the record; return
    the groups stopped. SIGTERM first, SIGKILL after `grace_s`, strays (descendants that left
    the group) killed at the end."""
    data = _read(path)
    living: list[Owned] = []
    procs: list[psutil.Process] = []
    for o in _owned(data) if data is not None else []:
        ours = _ours(o)
        if ours:
            living.append(o)
            procs += ours
    for o in living:
        _signal_group(o.pid, signal.SIGTERM)
    _, left = psutil.wait_procs(procs, timeout=grace_s)
    for o in living:
        if _group(o.pid):
            _signal_group(o.pid, signal.SIGKILL)
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=2)
    path.unlink(missing_ok=True)
    return living


def reap_orphans(
    folder: Path | None = None, grace_s: float = REAP_GRACE_S
) -> list[tuple[int, list[Owned]]]:
    """Reap the records of harnesses that have ended: [(harness pid, what was stopped)]."""
    folder = folder or runtime_dir()
    done: list[tuple[int, list[Owned]]] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read(path)
        harness = data.get("harness", {}) if data is not None else {}
        try:
            pid, started = int(harness["pid"]), float(harness["started"])
        except (KeyError, TypeError, ValueError):
            pid, started = -1, 0.0
        if pid == os.getpid() or (pid > 0 and alive(pid, started)):
            continue
        stopped = reap(path, grace_s)
        if stopped:
            done.append((pid, stopped))
    return done


class Registry:
    """This process's record of the groups it owns, and the watchdog that reaps it if we die.

    One per harness process (`registry()`), shared by every Supervisor in it; thread-safe.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or runtime_dir()
        self.path = self.folder / f"{os.getpid()}.json"
        self._owned: dict[int, Owned] = {}
        self._lock = threading.Lock()
        self._pipe: IO[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    def add(self, name: str, pid: int, ports: tuple[int, ...]) -> None:
        started = started_at(pid)
        if started is None:
            return
        with self._lock:
            self._owned[pid] = Owned(name=name, pid=pid, started=started, ports=ports)
            self._write()
            self._ensure_watchdog()

    def remove(self, pid: int) -> None:
        with self._lock:
            if self._owned.pop(pid, None) is not None:
                self._write()

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        me = psutil.Process()
        data = {
            "harness": {"pid": me.pid, "started": me.create_time(), "argv": sys.argv[:6]},
            "processes": [asdict(o) for o in self._owned.values()],
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)

    def _ensure_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.poll() is None:
            return
        read_end, write_end = os.pipe()
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-m", "bench.launch.watchdog", str(self.path)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is the harness's to handle
                cwd=Path(__file__).resolve().parents[2],
            )
        except OSError:
            os.close(write_end)
            return  # the next start still reaps the record
        finally:
            os.close(read_end)
        self._pipe = os.fdopen(write_end, "wb")

    def close(self) -> None:
        """Nothing is owned any more: delete the record and let the watchdog go."""
        with self._lock:
            if self._owned:
                return
            self.path.unlink(missing_ok=True)
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None
            if self._watchdog is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._watchdog.wait(timeout=2)
                self._watchdog = None


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> Registry:
    """This process's registry (created on first use)."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None or _REGISTRY.folder != runtime_dir():
            _REGISTRY = Registry()
        return _REGISTRY
