"""One run of the campaign: start `patternbench run` as a child, inject its fault, let it end,
let it settle, check what it left, and clear away anything of it still alive.

The harness starts in a session of its own (a Ctrl-C in the soak's terminal does not reach it),
with SIGINT at its default so the signal the campaign sends is the one a terminal would, and with
the run's marker in its environment (bench/soak/procs.py). Its stdout and stderr go to files
beside its runs folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.catalog import Pattern
from bench.launch.supervisor import port_in_use
from bench.soak import checks
from bench.soak.models import Fault, Injection, Leftover, Role, RunRecord, Target, TrialRef
from bench.soak.procs import MARKER_ENV, Tracker, kill, leftovers, listener
from bench.store import ResultFileError, load_run

POLL_S = 0.1
SETTLE_POLL_S = 0.25
#: How long after its moment a fault may still fire (a process found listening a little late).
FIRE_GRACE_S = 1.5
#: A harness past its time-out gets this long to stop its processes after SIGTERM.
STOP_GRACE_S = 15.0
RUN_ID = "run"
SIGNALS = {"harness-sigint": signal.SIGINT, "harness-sigterm": signal.SIGTERM,
           "harness-sigkill": signal.SIGKILL}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Campaign:
    root: Path
    pattern: Pattern
    harness_args: list[str]
    out: Path
    settle_s: float
    run_timeout_s: float


def pattern_ports(pattern: Pattern) -> list[int]:
    """Every port the pattern's processes listen on, before the offset."""
    ports = {p for s in pattern.support.values() for p in s.ports}
    for impl in pattern.implementations.values():
        ports.add(impl.port)
        metrics = impl.metrics_endpoint()
        if metrics is not None and metrics.port is not None:
            ports.add(metrics.port)
    return sorted(ports)


def choose_offset(
    ports: list[int], start: int, used: set[int], free: Callable[[int], bool], step: int = 10
) -> int:
    """The first offset from `start` (in steps) whose ports are all free and none used before,
    so a port one run left bound cannot make the next one fail."""
    offset = start
    while max(ports) + offset <= 65535:
        shifted = [p + offset for p in ports]
        if not used.intersection(shifted) and all(free(p) for p in shifted):
            return offset
        offset += step
    raise ValueError(f"no free ports from offset {start} up")


def _default_sigint() -> None:  # pragma: no cover - runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Run:
    """The state of one run while it goes."""

    def __init__(self, c: Campaign, fault: Fault, offset: int) -> None:
        self.c, self.fault, self.offset = c, fault, offset
        self.folder = c.out / f"run-{fault.run:02d}"
        self.runs_dir = self.folder / "runs"
        self.marker = str(self.folder)
        self.trials: list[tuple[TrialRef, float]] = []
        self.logs_at: float | None = None
        self.injection: Injection | None = None
        self.command: list[str] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bench", "run", self.c.pattern.pattern,
                   *self.c.harness_args, "--runs-dir", str(self.runs_dir), "--run-id", RUN_ID,
                   "--port-offset", str(self.offset)]  # fmt: skip
        self.command = command
        (self.folder / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
        with (
            (self.folder / "harness.stdout").open("wb") as out,
            (self.folder / "harness.stderr").open("wb") as err,
        ):
            return subprocess.Popen(
                command, cwd=self.c.root, env={**os.environ, MARKER_ENV: self.marker},
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                preexec_fn=_default_sigint,
            )  # fmt: skip

    def watch_trials(self, now: float) -> None:
        known = {ref for ref, _ in self.trials}
        for folder in sorted((self.runs_dir / RUN_ID / "logs").glob("*/rate-*-trial-*")):
            ref = checks.trial_ref(folder)
            if ref is not None and ref not in known:
                self.trials.append((ref, now))

    def due(self) -> float | None:
        """When the fault is due (monotonic seconds), once its anchor is known."""
        if self.fault.phase == "startup":
            anchor = self.logs_at
        else:
            index = self.fault.trial or 0
            anchor = self.trials[index][1] if len(self.trials) > index else None
        return None if anchor is None else anchor + self.fault.offset_s

    def fire(self, harness: subprocess.Popen[bytes], tree: list[psutil.Process]) -> Target | str:
        """Send the fault; the target, or why there was none to send it to."""
        kind = self.fault.kind
        if kind in SIGNALS:
            if harness.poll() is not None:
                return "the harness had ended"
            os.kill(harness.pid, SIGNALS[kind])
            return Target(role="harness", name="patternbench", pid=harness.pid,
                          command=" ".join(self.command))  # fmt: skip
        if not self.trials:
            return "no measured trial had started"
        impl_name = self.trials[-1][0].implementation
        impl = self.c.pattern.implementations[impl_name]
        role: Role
        if kind == "system-sigkill":
            role, name, port = "system", impl_name, impl.port
        else:
            needs = sorted(impl.needs, key=lambda s: self.c.pattern.support[s].scope != "trial")
            if not needs:
                return f"{impl_name} needs no support process"
            role, name, port = "support", needs[0], self.c.pattern.support[needs[0]].ports[0]
        proc = listener(tree[1:], port + self.offset)
        if proc is None:
            return f"no process of the run listening on 127.0.0.1:{port + self.offset}"
        command = " ".join(proc.cmdline())
        proc.send_signal(signal.SIGKILL)
        return Target(role=role, name=name, pid=proc.pid, command=command)

    def inject(self, harness: subprocess.Popen[bytes], tree: list[psutil.Process],
               started: float, now: float) -> None:  # fmt: skip
        due = self.due()
        if self.injection is not None or due is None or now < due:
            return
        target = self.fire(harness, tree)
        current = self.trials[-1][0] if self.trials and self.fault.phase == "trial" else None
        if isinstance(target, Target):
            self.injection = Injection(fired=True, at=datetime.now(UTC),
                                       after_start_s=round(now - started, 3), trial=current,
                                       target=target)  # fmt: skip
        elif now > due + FIRE_GRACE_S:
            self.injection = Injection(fired=False, trial=current, note=target)

    def not_fired(self) -> Injection:
        if self.fault.phase == "trial" and len(self.trials) <= (self.fault.trial or 0):
            note = f"the run ended after {len(self.trials)} measured trial(s)"
        else:
            note = "the run ended before the fault's moment"
        return Injection(fired=False, note=note)


def _stop(harness: subprocess.Popen[bytes], grace_s: float) -> None:
    """A harness past its time-out: SIGTERM (its own clean-up), then SIGKILL."""
    if harness.poll() is None:
        harness.terminate()
        try:
            harness.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            harness.kill()
    harness.wait()


def _settle(run: _Run, tracker: Tracker, since: float) -> tuple[list[Leftover], list[int]]:
    """Wait up to the settle time for the run's processes to end and its ports to free; kill
    what is left (counted) and say which ports were still bound."""
    ports = [p + run.offset for p in pattern_ports(run.c.pattern)]
    texts = [str(run.runs_dir), *(f"127.0.0.1:{p}" for p in ports)]
    deadline = time.monotonic() + run.c.settle_s
    while True:
        left = leftovers(tracker, run.marker, texts, since)
        held = [p for p in ports if port_in_use(p)]
        if (not left and not held) or time.monotonic() >= deadline:
            break
        time.sleep(SETTLE_POLL_S)
    kill([proc for _, proc in left])
    return [lo for lo, _ in left], held


def run_one(c: Campaign, fault: Fault, offset: int) -> RunRecord:
    """Run, inject, wait, settle, check, clean up."""
    run = _Run(c, fault, offset)
    since, started = time.time(), time.monotonic()
    harness = run.spawn()
    tracker = Tracker(harness.pid)
    timed_out = False
    try:
        while harness.poll() is None:
            now = time.monotonic()
            if now - started > c.run_timeout_s:
                timed_out = True
                tracker.poll()
                _stop(harness, STOP_GRACE_S)
                break
            tree = tracker.poll()
            if run.logs_at is None and (run.runs_dir / RUN_ID / "logs").is_dir():
                run.logs_at = now
            run.watch_trials(now)
            run.inject(harness, tree, started, now)
            time.sleep(POLL_S)
    except BaseException:  # the campaign itself interrupted: leave nothing of this run behind
        tracker.poll()
        harness.kill()
        harness.wait()
        kill([proc for _, proc in leftovers(tracker, run.marker, [str(run.runs_dir)], since)])
        raise
    harness.wait()
    duration = time.monotonic() - started
    left, held = _settle(run, tracker, since)
    return _record(run, harness, timed_out, duration, left, held)


def _record(run: _Run, harness: subprocess.Popen[bytes], timed_out: bool, duration: float,
            left: list[Leftover], held: list[int]) -> RunRecord:  # fmt: skip
    injection = run.injection or run.not_fired()
    stderr = (run.folder / "harness.stderr").read_text(encoding="utf-8", errors="replace")
    result = None
    # Absent (an interrupted run writes none) or corrupt (counted by corrupt_files): no result.
    with contextlib.suppress(ResultFileError):
        result = load_run(run.runs_dir / RUN_ID / "run.json")
    verdict, wrong = None, False
    target = injection.target
    if injection.fired and target is not None and target.role != "harness":
        assert injection.trial is not None
        wrong, verdict = checks.judge(result, injection.trial, target.role, target.name)
    code = None if timed_out else harness.returncode
    return RunRecord(
        fault=run.fault,
        port_offset=run.offset,
        runs_dir=str(run.runs_dir),
        injection=injection,
        exit_code=code,
        timed_out=timed_out,
        duration_s=round(duration, 2),
        orphans=left,
        held_ports=held,
        corrupt_files=checks.corrupt_files(run.runs_dir) if run.runs_dir.exists() else [],
        verdict=verdict,
        broken_called_valid=wrong,
        traceback=checks.has_traceback(stderr),
        bad_exit=checks.bad_exit(run.fault.kind, injection.fired, code, stderr),
    )
