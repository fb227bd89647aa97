"""What each implementation adds over a baseline, and what a rate limit admits: two report sections.

From the stored run alone, for a pattern whose system.toml asks for them:

- **Added over the baseline** (`[scenario] baseline = "<implementation>"`): at every rate where an
  implementation and the baseline were both measured validly, the p50 and p99 it adds over the
  baseline, as the median of the trial-by-trial differences (trial i of each ran back to back,
  A B B A, so the pairs share the machine's moment) with its 95% bootstrap interval, beside its
  own process's CPU time per call. A feature's price is read between two rows that differ in it.
- **What each feature adds**: for an implementation whose labels match another's but for one
  whose value there is `"none"` (`feature = "auth"` against `feature = "none"`), the p50, p99
  and CPU per call it adds over that one, paired by trial likewise.
- **Admission against the configured limit** (an implementation's `admits_rps`): at every
  offered rate above its limit, what it admitted (successful answers per second) against the
  limit, and how it refused the rest. It passes when the admitted rate is within
  `ADMISSION_TOLERANCE` of the limit and every refusal was an answer (a 429), not a request the
  generator gave up on (a time-out, a failed connection).
"""

from __future__ import annotations

from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult, Trial
from bench.report.calls import NONE, cell, figure
from bench.report.sections import ReportSection
from bench.stats.headroom import split_errors
from bench.stats.summary import estimate, trial_metrics

#: How far from its limit a rate limiter's admitted rate may be, as a share of the limit.
ADMISSION_TOLERANCE = 0.05

#: CPU per call of the whole system: the implementation's and its parts' (a core behind it).
SYSTEM_CPU = "system_cpu_us_per_call"

#: Past this share of failed (or refused) calls a point's latency is not that of the calls
#: asked for: it is left out of the added figures.
MAX_FAILED = 0.01


def _signed(e: Estimate) -> str:
    """An added figure with its interval: `+0.21 (+0.18 to +0.25)`."""

    def sign(v: float) -> str:
        return ("+" if v >= 0 else "−") + figure(abs(v))

    if e.n < 2 or e.low == e.high:
        return sign(e.median)
    return f"{sign(e.median)} ({sign(e.low)} to {sign(e.high)})"


def _rate(point: LoadPoint) -> str:
    return f"{point.target_rps:,.0f}" if point.target_rps is not None else "closed-loop"


def _pairs(point: LoadPoint, base: LoadPoint) -> list[tuple[dict[str, float], dict[str, float]]]:
    """The trial figures of each trial index valid at both points: (point's, base's)."""
    theirs = {t.index: t for t in base.trials if t.valid}
    return [(_metrics(t), _metrics(theirs[t.index])) for t in point.trials
            if t.valid and t.index in theirs]  # fmt: skip


def _difference(
    pairs: list[tuple[dict[str, float], dict[str, float]]], key: str
) -> Estimate | None:
    diffs = [mine[key] - other[key] for mine, other in pairs if key in mine and key in other]
    return estimate(diffs) if diffs else None


def paired_difference(point: LoadPoint, base: LoadPoint, key: str) -> Estimate | None:
    """The median of `key`'s trial-by-trial differences (point − base; a trial figure of
    `trial_metrics`, such as p99 or cpu_us_per_call), over the trial indexes valid in both and
    holding it, with its bootstrap interval; None without such a pair."""
    return _difference(_pairs(point, base), key)


def _metrics(trial: Trial) -> dict[str, float]:
    """`trial_metrics`, with the system's CPU per call its own where it has no parts."""
    found = trial_metrics(trial)
    if "cpu_us_per_call" in found:
        found.setdefault(SYSTEM_CPU, found["cpu_us_per_call"])
    return found


def _system_cpu(summary: dict[str, Estimate]) -> str:
    return cell(summary, SYSTEM_CPU if SYSTEM_CPU in summary else "cpu_us_per_call")


def _healthy(point: LoadPoint) -> bool:
    """Measured validly and failing (or refusing) at most MAX_FAILED of its calls in its trials
    (the interval's top: one trial that shed calls is enough): the latency of its answers is the
    latency of the calls asked for."""
    errors = point.summary.get("error_rate")
    return point.valid and bool(point.summary) and (errors is None or errors.high <= MAX_FAILED)


def _points_by_rate(impl: ImplementationResult) -> dict[float | None, LoadPoint]:
    return {p.target_rps: p for p in impl.points if _healthy(p)}


def _priced(point: LoadPoint, other: LoadPoint) -> list[str]:
    """The p50, p99, its own CPU and the system's per call that point adds over other, paired
    by trial."""
    pairs = _pairs(point, other)
    found = [_difference(pairs, k) for k in ("p50", "p99", "cpu_us_per_call", SYSTEM_CPU)]
    return [_signed(e) if e is not None else "—" for e in found]


def added_table(run: RunResult) -> list[str]:
    name = run.scenario.baseline
    if name is None:
        return []
    try:
        base = run.implementation(name)
    except KeyError:
        return []
    base_points = _points_by_rate(base)
    lines = [
        f"## Added over {name}",
        "",
        "| implementation | target calls/s | p50 ms | p99 ms | added p50 ms | added p99 ms | "
        "its CPU µs per call | the system's CPU µs per call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = 0
    for impl in run.implementations:
        for point in impl.points:
            other = base_points.get(point.target_rps)
            if not _healthy(point) or other is None:
                continue
            s = point.summary
            baseline = impl.name == name
            added = ["(baseline)"] * 2 if baseline else _priced(point, other)[:2]
            cells = [impl.name, _rate(point), cell(s, "p50"), cell(s, "p99"), *added,
                     cell(s, "cpu_us_per_call"), _system_cpu(s)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
            rows += 1
    if rows == 0:
        return [*lines[:2], f"No rate where {name} and another implementation were both "
                "measured validly.", ""]  # fmt: skip
    lines += [
        "",
        f"Added latency is the median of the trial-by-trial differences from {name} at the same "
        "rate (trials interleaved, so each pair ran back to back), with its 95% bootstrap "
        "interval; latency from the intended send time. CPU µs per call is each "
        "implementation's own process tree (a proxy's CPU, not that of the server behind it), "
        "per call answered; the system's adds the processes that are part of the system "
        '(supports with `cpus = "system"`, such as that server), over the same window. '
        f"Points where either side failed or refused over {MAX_FAILED:.0%} "
        "of its calls are left out (see Results): the latency of what was answered is not that "
        "of the calls asked for.",
        "",
    ]
    return lines


def _references(run: RunResult) -> list[tuple[ImplementationResult, ImplementationResult, str]]:
    """(implementation, its reference, the label): every implementation whose one label has a
    value other than NONE where another has the same labels but NONE there."""
    impls = [i for i in run.implementations if i.labels and i.status == "ok"]
    found = []
    for impl in impls:
        for key, value in impl.labels.items():
            if value == NONE:
                continue
            want = {**impl.labels, key: NONE}
            reference = next((i for i in impls if i.labels == want), None)
            if reference is not None:
                found.append((impl, reference, key))
    return found


def feature_table(run: RunResult) -> list[str]:
    """What each label value adds over its NONE reference, per rate, paired by trial."""
    pairs = _references(run)
    if not pairs:
        return []
    lines = [
        "## What each feature adds",
        "",
        "| implementation | over | target calls/s | added p50 ms | added p99 ms | added CPU µs "
        "per call, its own | added CPU µs per call, the system's |",
        "|---|---|---|---|---|---|---|",
    ]
    for impl, reference, key in pairs:
        theirs = _points_by_rate(reference)
        for point in impl.points:
            other = theirs.get(point.target_rps)
            if not _healthy(point) or other is None:
                continue
            cells = [f"{impl.name} ({key} {impl.labels[key]})", reference.name, _rate(point),
                     *_priced(point, other)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Each implementation against the one whose labels are the same but `{NONE}` in one: "
        "the median of the trial-by-trial differences of p50, p99 and the CPU per call (the "
        "implementation's own, and the whole system's), with the 95% bootstrap interval. An "
        "interval across zero is a price this "
        f"run could not tell from nothing. Points past {MAX_FAILED:.0%} of calls failed or "
        "refused are left out.",
        "",
    ]
    return lines


def admission_rows(impl: ImplementationResult) -> list[tuple[LoadPoint, Estimate, str, bool]]:
    """Each point above the implementation's limit: (point, admitted, the row's text, passed)."""
    limit = impl.admits_rps
    if limit is None:
        return []
    rows = []
    for point in impl.points:
        if point.target_rps is None or point.target_rps <= limit or not point.trials:
            continue
        trials = [t for t in point.trials if t.valid] or point.trials
        admitted = estimate([t.load.throughput_rps for t in trials])
        kinds: dict[str, int] = {}
        for t in trials:
            for kind, n in t.load.error_kinds.items():
                kinds[kind] = kinds.get(kind, 0) + n
        unanswered = sum(split_errors(t.load.error_kinds).generator_total for t in trials)
        off = admitted.median / limit - 1
        passed = abs(off) <= ADMISSION_TOLERANCE and unanswered == 0
        refused = ", ".join(f"{k} × {n:,}" for k, n in sorted(kinds.items())) or "none"
        text = (
            f"| {impl.name} | {limit:,.0f} | {_rate(point)} | {cell({'a': admitted}, 'a')} | "
            f"{off:+.1%} | {refused} | {unanswered:,} | {'yes' if passed else '**no**'} |"
        )
        rows.append((point, admitted, text, passed))
    return rows


def admission_table(run: RunResult) -> tuple[list[str], list[str]]:
    """The section's lines, and a reading bullet per implementation checked."""
    found = [(impl, admission_rows(impl)) for impl in run.implementations]
    found = [(impl, rows) for impl, rows in found if rows]
    if not found:
        limited = [i.name for i in run.implementations if i.admits_rps is not None]
        if not limited:
            return [], []
        note = (f"{', '.join(limited)}: no load above the configured limit was measured, so "
                "what the limit admits was not checked.")  # fmt: skip
        return ["## Admission against the configured limit", "", note, ""], []
    lines = [
        "## Admission against the configured limit",
        "",
        "| implementation | limit calls/s | offered calls/s | admitted calls/s | off the limit | "
        "refusals by kind | never answered | within "
        f"{ADMISSION_TOLERANCE:.0%}, all answered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bullets = []
    for impl, rows in found:
        lines += [text for _, _, text, _ in rows]
        within = f"{ADMISSION_TOLERANCE:.0%}"
        verdict = (
            f"within {within}, every refusal an answer."
            if all(ok for *_, ok in rows)
            else f"**outside {within} or with requests never answered** (see Admission)."
        )
        offered = "; ".join(
            f"{cell({'a': admitted}, 'a')} calls/s of {_rate(p)} offered"
            for p, admitted, _, _ in rows
        )
        bullets.append(
            f"- **{impl.name}** admitted {offered} against its limit of "
            f"{impl.admits_rps:,.0f}: {verdict}"
        )
    lines += [
        "",
        "Admitted is the successful answers per second in the window (median over the trials "
        "with its interval); refusals by kind are every error of those trials, summed; never "
        "answered counts the requests the generator gave up on (time-outs, failed connections), "
        "which a limiter must not cause: it refuses at once.",
        "",
    ]
    return lines, bullets


def section(run: RunResult) -> ReportSection:
    """Both tables, as a section of the report."""
    admission, bullets = admission_table(run)
    lines = [*added_table(run), *feature_table(run), *admission]
    return ReportSection(reading=bullets, lines=lines)
