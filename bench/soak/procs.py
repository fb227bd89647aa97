"""The processes of one harness run: seen while it runs, found again after it, killed if left.

The harness starts its children in sessions of their own, and once it is killed they are
reparented, so "a descendant of the run" is what the tracker saw while the run lived (PID and
start time, so a reused PID is not mistaken for one). A process it never saw (a short-lived one
between two polls, a watchdog that detached itself) is still the run's when it started after the
run did and carries the run's marker: in its environment (every child inherits it) or in its
command line (the run's folder, its addresses).

Signals go only to processes of the run: the harness the campaign started, or one of these.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psutil

from bench.soak.models import Leftover

#: The environment variable every process of a run inherits, set to the run's own marker.
MARKER_ENV = "PATTERNBENCH_SOAK_RUN"


@dataclass(frozen=True)
class Seen:
    pid: int
    create_time: float
    command: str

    def process(self) -> psutil.Process | None:
        """The process if it still runs (the same one: same PID and start time)."""
        try:
            proc = psutil.Process(self.pid)
            if proc.create_time() != self.create_time or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None


def _command(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


class Tracker:
    """Every process seen in the harness's tree while it ran, by PID."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.seen: dict[int, Seen] = {}
        self.poll()

    def poll(self) -> list[psutil.Process]:
        """The tree as it is now (the harness first); each new member is remembered."""
        try:
            root = psutil.Process(self.root_pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        alive = []
        for proc in tree:
            try:
                if proc.pid not in self.seen:
                    self.seen[proc.pid] = Seen(proc.pid, proc.create_time(), _command(proc))
                alive.append(proc)
            except psutil.Error:
                continue
        return alive


def listener(candidates: Iterable[psutil.Process], port: int) -> psutil.Process | None:
    """The process among candidates listening on 127.0.0.1:port (TCP), if any."""
    for proc in candidates:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return proc
        except psutil.Error:
            continue
    return None


def _ancestors() -> set[int]:
    """This process and those above it: never the run's, whatever their command lines say."""
    pids = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        pids |= {p.pid for p in psutil.Process().parents()}
    return pids


def _marked(proc: psutil.Process, marker: str, texts: Sequence[str]) -> bool:
    try:
        command = " ".join(proc.cmdline())
        if any(text in command for text in texts):
            return True
        if proc.uids().real != os.getuid():
            return False
        return proc.environ().get(MARKER_ENV) == marker
    except psutil.Error:
        return False


def leftovers(
    tracker: Tracker, marker: str, texts: Sequence[str], since: float
) -> list[tuple[Leftover, psutil.Process]]:
    """The run's processes still alive: seen in its tree, or started since `since` (epoch
    seconds) with its marker in their environment or one of `texts` in their command line."""
    mine = _ancestors()
    found: dict[int, tuple[Leftover, psutil.Process]] = {}
    for seen in tracker.seen.values():
        proc = seen.process()
        if proc is not None and proc.pid not in mine:
            found[proc.pid] = (Leftover(pid=proc.pid, command=seen.command,
                                        found_by="descendant"), proc)  # fmt: skip
    for proc in psutil.process_iter():
        try:
            if proc.pid in found or proc.pid in mine or proc.create_time() < since - 1.0:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE or not _marked(proc, marker, texts):
                continue
            found[proc.pid] = (Leftover(pid=proc.pid, command=_command(proc),
                                        found_by="marker"), proc)  # fmt: skip
        except psutil.Error:
            continue
    return sorted(found.values(), key=lambda item: item[0].pid)


def kill(procs: Sequence[psutil.Process], timeout_s: float = 5.0) -> None:
    """SIGKILL each (processes of the run only) and reap what is ours to reap."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(procs), timeout=timeout_s)
