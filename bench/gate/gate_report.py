"""The gate's verdict on disk: `gate.json` (versioned) and `gate.md` (a PR comment, a job summary).

Exit codes follow the verdict: 0 pass (no regression), 1 regression, 2 undecided (a comparison
without enough valid trials, or with too few to reach significance at all, an implementation
that failed, runs that cannot be paired): a gate that could not have seen a regression does not
say there was none.
A regression outranks an undecided comparison elsewhere: it is the actionable finding.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.gate.compare import Comparison
from bench.store import write_atomic

GATE_SCHEMA_VERSION: Final = 1
EXIT = {"pass": 0, "regression": 1, "undecided": 2}

GateVerdict = Literal["pass", "regression", "undecided"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Side(_Model):
    label: str = Field(description="the git ref, or the run compared")
    git_sha: str | None
    runs: list[str] = Field(description="the run folders measured for this side")


class GateResult(_Model):
    schema_version: Literal[1] = GATE_SCHEMA_VERSION
    created_at: datetime
    base: Side
    head: Side
    alpha: float
    min_effect: float
    comparisons: list[Comparison]
    problems: list[str] = Field(description="what kept the gate from comparing something")
    warnings: list[str] = Field(default=[], description="e.g. a budget too small for the effect")
    verdict: GateVerdict
    exit_code: int


def verdict_of(comparisons: list[Comparison], problems: list[str]) -> GateVerdict:
    if any(c.verdict == "regression" for c in comparisons):
        return "regression"
    blind = any(c.verdict == "undecided" or c.mde is None for c in comparisons)
    if problems or not comparisons or blind:
        return "undecided"
    return "pass"


def make_result(
    base: Side,
    head: Side,
    comparisons: list[Comparison],
    problems: list[str],
    *,
    alpha: float,
    min_effect: float,
    warnings: list[str] | None = None,
) -> GateResult:
    verdict = verdict_of(comparisons, problems)
    blind = sorted(
        {f"{c.implementation} {c.metric}" for c in comparisons if c.note and c.mde is None}
    )
    notes = list(warnings or [])
    if blind:
        notes.append(
            "too few trials to call any change in: " + ", ".join(blind) + " (raise `trials`)"
        )
    weak = [c for c in comparisons if c.mde is not None and c.mde > min_effect]
    if weak:
        worst = max(c.mde or 0.0 for c in weak)
        notes.append(
            f"{len(weak)} comparison(s) can only see changes above {min_effect:.0%} "
            f"(up to {worst:.1%} at the noise measured): a larger budget would see smaller ones"
        )
    return GateResult(
        created_at=datetime.now(UTC),
        base=base,
        head=head,
        alpha=alpha,
        min_effect=min_effect,
        comparisons=comparisons,
        problems=problems,
        warnings=notes,
        verdict=verdict,
        exit_code=EXIT[verdict],
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


_ICON = {"regression": "❌ regression", "improvement": "✅ improvement", "no change": "no change",
         "undecided": "⚠️ undecided"}  # fmt: skip
_HEADLINE = {
    "pass": "✅ **No regression.**",
    "regression": "❌ **Regression.**",
    "undecided": "⚠️ **Undecided**: the gate could not compare everything it was asked to.",
}


def render_markdown(result: GateResult, report_links: dict[str, str] | None = None) -> str:
    base, head = result.base, result.head
    lines = [
        "## patternbench gate",
        "",
        f"{_HEADLINE[result.verdict]} base `{base.label}` ({(base.git_sha or '?')[:10]}) → head "
        f"`{head.label}` ({(head.git_sha or '?')[:10]}). A change is called when Mann-Whitney's "
        f"p < {result.alpha:g} after the Benjamini-Hochberg correction over "
        f"{len(result.comparisons)} comparisons **and** the medians differ by at least "
        f"{result.min_effect:.0%}.",
        "",
    ]
    if result.problems:
        lines += ["**Could not compare:**", "", *[f"- {p}" for p in result.problems], ""]
    lines += [
        "| pattern | implementation | rate | metric | base | head | change (95% CI) | p (adj.) "
        "| noise | detectable | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result.comparisons:
        rate = f"{c.target_rps:,.0f}" if c.target_rps is not None else "—"
        ci = (
            f"{_pct(c.change)} ({_pct(c.change_low)} to {_pct(c.change_high)})"
            if c.change is not None
            else "—"
        )
        p = "—" if c.p_adjusted is None else f"{c.p_adjusted:.2g}"
        noise = "—" if c.noise is None else f"{100 * c.noise:.1f}%"
        mde = "—" if c.mde is None else f"{100 * c.mde:.1f}%"
        unit = "" if c.metric == "throughput_rps" or c.metric.startswith("instructions") else " ms"
        lines.append(
            f"| {c.pattern} | {c.implementation} | {rate} | {c.metric} "
            f"| {_num(c.base_median)}{unit if c.base_median is not None else ''} "
            f"| {_num(c.head_median)}{unit if c.head_median is not None else ''} | {ci} | {p} "
            f"| {noise} | {mde} | {_ICON[c.verdict]} |"
        )
    lines.append("")
    if result.warnings:
        lines += ["**What the gate could not see:**", "", *[f"- {w}" for w in result.warnings]]
        lines.append("")
    lines += [
        "Noise: the trials' coefficient of variation; detectable: the smallest change this test "
        "finds 80% of the time at that noise and trial count. Latency is from each request's "
        "intended send time (open-loop).",
        "",
    ]
    if report_links:
        lines += [
            "Reports: " + ", ".join(f"[{k}]({v})" for k, v in report_links.items()),
            "",
        ]
    return "\n".join(lines)


def save(result: GateResult, out_dir: Path, report_links: dict[str, str] | None = None) -> Path:
    """Write gate.json and gate.md into out_dir; return gate.md's path."""
    write_atomic(out_dir / "gate.json", result.model_dump_json(indent=2) + "\n")
    md = out_dir / "gate.md"
    write_atomic(md, render_markdown(result, report_links))
    return md
