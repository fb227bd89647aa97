"""The gate measuring itself: how often it cries wolf (A/A) and how often it sees a real slowdown
(A/B).

`patternbench selfcheck` clones this repository's HEAD into a temporary folder (nothing is
committed here) and adds one commit that injects a delay into one implementation's request
handler: a busy wait of `--delay-us` microseconds, 750 by default (about 9% of fan-out's Go p50
under the gate profile). What to slow down is the pattern's `[selfcheck]` table in its
system.toml (the implementation, the file, the line after which the code goes, and the code in
that file's language), each overridable with `--pattern`, `--impl`, `--file`, `--after`, `--code`.
A busy wait, not a sleep: measured here, Go's `time.Sleep` of 375 µs and of 750 µs both cost
about 1.1 ms (+13% on p50 each), which made the injected slowdown larger than asked.
It then runs

- `--aa N` gates of the clean revision against itself: every regression called is a false
  positive;
- `--ab N` gates of the clean revision (base) against the slowed one (head): every regression
  called on the slowed implementation's p50 is a detection;

and writes `selfcheck.json` and `selfcheck.md` with both rates and their 95% Clopper-Pearson
intervals (scipy's `binomtest`). With 20 runs an observed 0 of 20 still allows a true rate up to
17%: the interval, not the point, says how much the figures are worth.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bench.catalog import Pattern
from bench.gate import compare
from bench.gate.gate import GateOptions, run_gate
from bench.run import Parts
from bench.store import write_atomic


@dataclass(frozen=True, kw_only=True)
class Target:
    """What to slow down: a pattern's implementation, and where and how in its source."""

    pattern: str
    implementation: str
    file: str
    after: str
    code: str

    @classmethod
    def of(cls, pattern: Pattern, **overrides: str | None) -> Target:
        table = pattern.selfcheck
        given = {k: v for k, v in overrides.items() if v is not None}
        if table is None and set(given) < {"implementation", "file", "after", "code"}:
            raise SelfCheckError(
                f"{pattern.pattern}: no [selfcheck] table in its system.toml: give --impl, --file, "
                "--after and --code"
            )
        base = table.model_dump() if table is not None else {}
        return cls(pattern=pattern.pattern, **{**base, **given})


class SelfCheckError(Exception):
    """The self-check cannot run (nothing to slow down, the line to slow after is missing)."""


class Rate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hits: int
    runs: int
    rate: float
    low: float
    high: float


class SelfCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    implementation: str
    delay_us: int
    min_effect: float
    overrides: dict[str, str]
    false_positives: Rate | None
    detections: Rate | None
    aa_verdicts: list[str]
    ab_verdicts: list[str]
    ab_p50_changes: list[float | None]
    seconds_per_gate: float


@dataclass(frozen=True, kw_only=True)
class SelfCheckOptions:
    aa: int = 20
    ab: int = 20
    delay_us: int = 750
    min_effect: float = compare.MIN_EFFECT
    overrides: Mapping[str, str] = field(default_factory=dict)
    port_offset: int = 0
    target: Target
    parts: Parts


def rate(hits: int, runs: int) -> Rate | None:
    if runs == 0:
        return None
    from scipy import stats  # slow to import: only where used

    ci = stats.binomtest(hits, runs).proportion_ci(confidence_level=0.95, method="exact")
    return Rate(hits=hits, runs=runs, rate=hits / runs, low=float(ci.low), high=float(ci.high))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=selfcheck", "-c", "user.email=selfcheck@localhost", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    )  # fmt: skip


def prepare(root: Path, workdir: Path, delay_us: int, target: Target) -> Path:
    """A clone of HEAD with two commits on top: `clean` (empty) and `slowed` (the delay)."""
    repo = workdir / "repo"
    _git(root, "clone", "--quiet", "--shared", str(root), str(repo))
    _git(repo, "commit", "--quiet", "--allow-empty", "-m", "clean")
    _git(repo, "tag", "clean")
    path = repo / target.file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SelfCheckError(f"{target.file}: cannot read: {e.strerror}") from None
    if target.after not in text:
        raise SelfCheckError(f"{target.file}: the line to slow down after was not found: "
                             f"{target.after.strip()!r}")  # fmt: skip
    delay = target.code.replace("{delay_us}", str(delay_us))
    delay += "" if delay.endswith("\n") else "\n"
    at = text.index(target.after) + len(target.after)
    if not target.after.endswith("\n"):  # after the whole line
        at = (text.find("\n", at) + 1) or len(text)
    path.write_text(text[:at] + delay + text[at:], encoding="utf-8")
    _git(repo, "commit", "--quiet", "-am", f"slowed by {delay_us} µs")
    _git(repo, "tag", "slowed")
    return repo


def run_selfcheck(
    root: Path, options: SelfCheckOptions, out: Path, say: Callable[[str], None] = lambda _: None
) -> SelfCheck:
    out.mkdir(parents=True, exist_ok=True)
    aa: list[str] = []
    ab: list[str] = []
    changes: list[float | None] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="patternbench-selfcheck-") as tmp:
        target = options.target
        repo = prepare(root, Path(tmp), options.delay_us, target)
        plans = [("aa", "clean", i) for i in range(options.aa)]
        plans += [("ab", "slowed", i) for i in range(options.ab)]
        # A/A and A/B gates alternate, so that a machine's drift reaches both alike.
        plans.sort(key=lambda p: (p[2], p[0]))
        for kind, head, i in plans:
            gate_options = GateOptions(
                base="clean", head=head, patterns=[target.pattern],
                implementations=[target.implementation], min_effect=options.min_effect,
                overrides=options.overrides, out_dir=out / f"{kind}-{i:02d}",
                port_offset=options.port_offset, parts=options.parts,
            )  # fmt: skip
            result, _ = run_gate(repo, gate_options)
            if kind == "aa":
                aa.append(result.verdict)
            else:
                p50 = next((c for c in result.comparisons if c.metric == "p50"), None)
                ab.append(p50.verdict if p50 is not None else "undecided")
                changes.append(p50.change if p50 is not None else None)
            say(f"{kind} {i + 1}: {aa[-1] if kind == 'aa' else ab[-1]}")
    gates = options.aa + options.ab
    check = SelfCheck(
        pattern=options.target.pattern,
        implementation=options.target.implementation,
        delay_us=options.delay_us,
        min_effect=options.min_effect,
        overrides=dict(options.overrides),
        false_positives=rate(sum(v == "regression" for v in aa), len(aa)),
        detections=rate(sum(v == "regression" for v in ab), len(ab)),
        aa_verdicts=aa,
        ab_verdicts=ab,
        ab_p50_changes=changes,
        seconds_per_gate=(time.monotonic() - started) / max(1, gates),
    )
    write_atomic(out / "selfcheck.json", check.model_dump_json(indent=2) + "\n")
    write_atomic(out / "selfcheck.md", render(check))
    return check


def _rate_text(r: Rate | None) -> str:
    if r is None:
        return "not measured"
    return f"{r.hits} of {r.runs} = {r.rate:.0%} (95% interval {r.low:.0%} to {r.high:.0%})"


def render(check: SelfCheck) -> str:
    known = [c for c in check.ab_p50_changes if c is not None]
    mean_change = f"{100 * sum(known) / len(known):+.1f}%" if known else "—"
    return "\n".join(
        [
            "# patternbench gate — self-check",
            "",
            f"{check.pattern}, `{check.implementation}` only; "
            f"overrides {check.overrides or 'none'}; "
            f"minimum effect {check.min_effect:.0%}; {check.seconds_per_gate:.0f} s per gate.",
            "",
            f"- **False positives (A/A, the same revision both sides):** "
            f"{_rate_text(check.false_positives)}. Target ≤ 5%.",
            f"- **Detections (A/B, a {check.delay_us} µs busy wait per request):** "
            f"{_rate_text(check.detections)}; the p50 change measured averaged {mean_change}. "
            "Target ≥ 95%.",
            "",
            f"A/A verdicts: {', '.join(check.aa_verdicts) or '—'}",
            "",
            f"A/B p50 verdicts: {', '.join(check.ab_verdicts) or '—'}",
            "",
        ]
    )
