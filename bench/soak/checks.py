"""What the campaign checks after each run, on what the run left: pure functions of files, texts
and exit statuses, so each can be tested on made-up ones.

Attribution of a killed system or support: the campaign kills it inside the measured window of
one trial, whose folder (logs/<implementation>/rate-<rate>-trial-<index>) it saw appear, so the
broken trial is known by implementation, rate and index. The result then must not call it good:
the trial must be invalid, or the implementation failed. It is a "broken trial called valid" when
the implementation's status is ok and that trial is valid, or, when the result has no such
trial, every trial of the implementation is valid (the broken one was dropped without a word).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.models import ImplementationResult, RunResult, Trial
from bench.soak.models import Role, TrialRef
from bench.soak.options import FaultKind
from bench.store import ResultFileError, load_run

#: How bench.store.write_atomic (and loadgen's writer) name the temporary file before the rename.
ATOMIC_TMP = re.compile(r"^\..+\.tmp$")
TRIAL_FOLDER = re.compile(r"^rate-(?P<rate>.+)-trial-(?P<index>\d+)$")
TRACEBACK = "Traceback (most recent call last)"
#: Exit statuses of a harness stopped by SIGINT or SIGTERM (bench/cli.py: 130 for both today).
INTERRUPTED = (130, 143)


def trial_ref(folder: Path) -> TrialRef | None:
    """The trial a folder logs/<implementation>/rate-<rate>-trial-<index> belongs to."""
    match = TRIAL_FOLDER.match(folder.name)
    if match is None:
        return None
    return TrialRef(
        implementation=folder.parent.name, rate=match["rate"], index=int(match["index"])
    )


def corrupt_files(runs_dir: Path) -> list[str]:
    """Files under runs_dir that a reader would trip on: a run.json load_run rejects, another
    JSON file that does not parse, a temporary file of an atomic write left behind."""
    found: list[str] = []
    for path in sorted(p for p in runs_dir.rglob("*") if p.is_file()):
        if ATOMIC_TMP.match(path.name):
            found.append(f"{path}: temporary file of an atomic write left behind")
        elif path.name == "run.json":
            try:
                load_run(path)
            except ResultFileError as e:
                found.append(str(e))
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                found.append(f"{path}: not JSON: {e}")
    return found


def _rate_label(target_rps: float | None) -> str:
    return f"{target_rps:g}" if target_rps is not None else "closed"


def _find_trial(impl: ImplementationResult, ref: TrialRef) -> Trial | None:
    for point in impl.points:
        if _rate_label(point.target_rps) == ref.rate:
            return next((t for t in point.trials if t.index == ref.index), None)
    return None


def _named(text: str, name: str) -> str:
    return "" if name in text else f" (not naming {name})"


def judge(result: RunResult | None, ref: TrialRef, role: Role, name: str) -> tuple[bool, str]:
    """(broken trial called valid?, what the result says) for a system or support `name`
    killed during the trial `ref`."""
    where = f"{ref.implementation} at {ref.rate} req/s, trial {ref.index}"
    if result is None:
        return False, "no result written"
    try:
        impl = result.implementation(ref.implementation)
    except KeyError:
        return False, f"{ref.implementation}: not in the result"
    if impl.status != "ok":
        return False, f"{ref.implementation} {impl.status}: {impl.error}" + _named(
            f"{ref.implementation} {impl.error}", name
        )
    trial = _find_trial(impl, ref)
    if trial is not None and not trial.valid:
        reasons = "; ".join(trial.invalid_reasons)
        return False, f"{where}: invalid: {reasons}" + _named(reasons, name)
    if trial is not None:
        return True, f"{where}: valid, and {ref.implementation} ok, though {role} {name} was killed"
    every = [t for p in impl.points for t in p.trials]
    if all(t.valid for t in every):
        return True, f"{where}: missing, and all {len(every)} other trials valid with status ok"
    return False, f"{where}: missing; {sum(not t.valid for t in every)} trial(s) invalid"


def has_traceback(stderr: str) -> bool:
    return TRACEBACK in stderr


def bad_exit(kind: FaultKind, fired: bool, code: int | None, stderr: str) -> str | None:
    """Why the harness's exit does not fit the fault, or None when it does.

    SIGINT or SIGTERM: 130 (or 143), and one line saying so as the last line of stderr. SIGKILL
    of the harness: killed (-9). A killed system or support, or a fault that never fired: the
    run's own verdict, 0 or 1 (a crash, 2 or a signal is not).
    """
    if code is None:
        return "did not end (killed by the campaign after its time-out)"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if fired and kind in ("harness-sigint", "harness-sigterm"):
        if code not in INTERRUPTED:
            return f"exit {code}, not {' or '.join(map(str, INTERRUPTED))}"
        said = [line for line in lines if line.startswith("patternbench:")]
        if len(said) != 1 or not lines or lines[-1] != said[0]:
            return f"exit {code}, but stderr ends with {len(said)} patternbench: lines, not one"
        return None
    if fired and kind == "harness-sigkill":
        return None if code == -9 else f"exit {code} after SIGKILL, not -9"
    return None if code in (0, 1) else f"exit {code}, not 0 or 1"
