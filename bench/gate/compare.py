"""Is head worse than base? The decision of the regression gate, on the trials of two runs.

For each (pattern, implementation, target rate, metric) present on both sides, with the metrics
throughput (higher is better), p50 and p99 (lower is better), the valid trials of each side are
two samples. A change is called only when it is both

- **significant**: a two-sided Mann-Whitney U test (scipy, exact for small samples) has a p-value
  below `alpha` after the Benjamini-Hochberg correction over every comparison of the gate, so
  that checking many metrics does not multiply false alarms; and
- **large enough**: the ratio of medians head/base is worse than `min_effect` (5% by default),
  so that a real but negligible shift does not block anyone.

A regression is such a change in the bad direction, an improvement in the good one. Beside each
decision the gate reports the noise it measured (the trials' coefficient of variation, pooled
over both sides), the 95% bootstrap interval of the head/base ratio, and the **minimum
detectable effect** at that noise and trial count: the smallest change the test would find 80%
of the time. When that exceeds `min_effect` the gate says so: it cannot see what was asked
(more trials, a longer window or a quieter machine would). With very few trials the smallest
p-value Mann-Whitney can give is above the corrected alpha; no change can then be called at all.

Trials that the headroom rules marked invalid never enter a comparison. A point that has fewer
than two valid trials on a side makes the comparison `undecided` (the gate's exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.gate.decision import ALPHA as ALPHA
from bench.gate.decision import MIN_EFFECT as MIN_EFFECT
from bench.models import RunResult, Trial

if TYPE_CHECKING:  # numpy and scipy are imported where used: the command line starts fast
    import numpy as np

#: metric → +1 when higher is better, −1 when lower is better.
METRICS: Final = {"throughput_rps": 1, "p50": -1, "p99": -1}
POWER: Final = 0.80
#: Mann-Whitney's efficiency relative to the t-test under normality (3/π).
_MW_ARE: Final = 3 / math.pi

Verdict = Literal["regression", "improvement", "no change", "undecided"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Comparison(_Model):
    pattern: str
    implementation: str
    target_rps: float | None
    metric: str
    base: list[float] = Field(description="the metric of each valid base trial")
    head: list[float]
    base_median: float | None
    head_median: float | None
    change: float | None = Field(description="head/base − 1 of the medians; +0.10 is 10% higher")
    change_low: float | None = Field(description="95% bootstrap interval of the change")
    change_high: float | None
    p_value: float | None = Field(description="Mann-Whitney U, two-sided")
    p_adjusted: float | None = Field(description="Benjamini-Hochberg over the gate's comparisons")
    noise: float | None = Field(description="pooled coefficient of variation of the trials")
    mde: float | None = Field(
        description="minimum detectable change at this noise and trial count (80% power); "
        "None when the test cannot reach significance at all with so few trials"
    )
    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class Samples:
    """One comparison's inputs before the correction across comparisons."""

    pattern: str
    implementation: str
    target_rps: float | None
    metric: str
    base: list[float]
    head: list[float]


def trial_value(trial: Trial, metric: str) -> float:
    if metric == "throughput_rps":
        return trial.load.throughput_rps
    return float(getattr(trial.load.latency_ms, metric))


def pair_samples(base: RunResult, head: RunResult) -> tuple[list[Samples], list[str]]:
    """The samples of every comparison two runs allow, and what could not be paired."""
    problems: list[str] = []
    if base.scenario.pattern != head.scenario.pattern:
        return [], [
            f"the runs are of different patterns ({base.scenario.pattern} and "
            f"{head.scenario.pattern})"
        ]
    pattern = base.scenario.pattern
    samples: list[Samples] = []
    head_impls = {i.name: i for i in head.implementations}
    for b_impl in base.implementations:
        h_impl = head_impls.get(b_impl.name)
        if h_impl is None:
            problems.append(f"{pattern}/{b_impl.name}: not in head")
            continue
        for impl in (b_impl, h_impl):
            if impl.status != "ok":
                side = "base" if impl is b_impl else "head"
                problems.append(f"{pattern}/{impl.name}: {impl.status} in {side}: {impl.error}")
        head_points = {p.target_rps: p for p in h_impl.points}
        for b_point in b_impl.points:
            h_point = head_points.get(b_point.target_rps)
            if h_point is None:
                problems.append(f"{pattern}/{b_impl.name} at {b_point.target_rps}: not in head")
                continue
            b_trials = [t for t in b_point.trials if t.valid]
            h_trials = [t for t in h_point.trials if t.valid]
            for metric in METRICS:
                samples.append(
                    Samples(
                        pattern=pattern,
                        implementation=b_impl.name,
                        target_rps=b_point.target_rps,
                        metric=metric,
                        base=[trial_value(t, metric) for t in b_trials],
                        head=[trial_value(t, metric) for t in h_trials],
                    )
                )
    return samples, problems


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney test of n1 and n2 samples can give."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def minimum_detectable_effect(
    noise: float, n1: int, n2: int, alpha: float, power: float = POWER
) -> float | None:
    """The relative change found with probability `power` at two-sided level `alpha`.

    The normal approximation of a two-sample test on values with coefficient of variation
    `noise`, scaled by Mann-Whitney's asymptotic relative efficiency; None when the exact test
    cannot reach `alpha` with these sample sizes.
    """
    from scipy import stats

    if smallest_p(n1, n2) > alpha:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * noise * math.sqrt((1 / n1 + 1 / n2) / _MW_ARE))


def _cv(values: Sequence[float]) -> float:
    import numpy as np

    mean = float(np.mean(values))
    return float(np.std(values, ddof=1) / abs(mean)) if mean and len(values) > 1 else 0.0


def pooled_noise(base: Sequence[float], head: Sequence[float]) -> float:
    """The coefficient of variation of the trials, pooled over both sides."""
    n1, n2 = len(base), len(head)
    return math.sqrt(((n1 - 1) * _cv(base) ** 2 + (n2 - 1) * _cv(head) ** 2) / (n1 + n2 - 2))


def ratio_interval(
    base: Sequence[float], head: Sequence[float], seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of median(head) / median(base) − 1, resampling each side."""
    import numpy as np
    from scipy import stats

    def ratio(b: np.ndarray, h: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.median(h, axis=axis) / np.median(b, axis=axis) - 1.0)

    result = stats.bootstrap(
        (np.asarray(base, float), np.asarray(head, float)),
        ratio,
        n_resamples=9999,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def decide(
    all_samples: Iterable[Samples], *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT
) -> list[Comparison]:
    """Test every comparison, correct across them, and call each one."""
    from scipy import stats

    pending = list(all_samples)
    p_values: list[float] = []
    tested: list[int] = []
    for index, s in enumerate(pending):
        if len(s.base) >= 2 and len(s.head) >= 2:
            p = stats.mannwhitneyu(s.head, s.base, alternative="two-sided").pvalue
            p_values.append(float(p))
            tested.append(index)
    adjusted = (
        [float(x) for x in stats.false_discovery_control(p_values, method="bh")] if p_values else []
    )
    corrected = dict(zip(tested, zip(p_values, adjusted, strict=True), strict=True))
    # The level a single comparison must reach for BH to call it when it is the only change:
    # the most demanding rank, alpha / m. Used for the detectable effect, conservatively.
    per_test_alpha = alpha / max(1, len(tested))
    return [
        _call(s, corrected.get(i), alpha, per_test_alpha, min_effect) for i, s in enumerate(pending)
    ]


def _call(
    s: Samples,
    p: tuple[float, float] | None,
    alpha: float,
    per_test_alpha: float,
    min_effect: float,
) -> Comparison:
    fields: dict[str, object] = {
        "pattern": s.pattern,
        "implementation": s.implementation,
        "target_rps": s.target_rps,
        "metric": s.metric,
        "base": s.base,
        "head": s.head,
    }
    if p is None:
        need = f"{len(s.base)} valid base and {len(s.head)} valid head trials; 2 each are needed"
        return Comparison.model_validate(
            {
                **fields,
                "base_median": None,
                "head_median": None,
                "change": None,
                "change_low": None,
                "change_high": None,
                "p_value": None,
                "p_adjusted": None,
                "noise": None,
                "mde": None,
                "verdict": "undecided",
                "note": need,
            }
        )
    import numpy as np

    base_median, head_median = float(np.median(s.base)), float(np.median(s.head))
    change = head_median / base_median - 1.0 if base_median else 0.0
    low, high = ratio_interval(s.base, s.head) if base_median else (0.0, 0.0)
    noise = pooled_noise(s.base, s.head)
    mde = minimum_detectable_effect(noise, len(s.base), len(s.head), per_test_alpha)
    worse = -METRICS[s.metric] * change  # > 0: head is worse
    p_value, p_adjusted = p
    verdict: Verdict = "no change"
    if p_adjusted < alpha and abs(change) >= min_effect:
        verdict = "regression" if worse > 0 else "improvement"
    note = ""
    if mde is None:
        note = (
            f"{len(s.base)} and {len(s.head)} trials cannot reach significance after the "
            f"correction (smallest p {smallest_p(len(s.base), len(s.head)):.3g}): more trials"
        )
    elif mde > min_effect:
        note = f"can only see changes of {mde:.1%} or more at this noise"
    return Comparison.model_validate(
        {
            **fields,
            "base_median": base_median,
            "head_median": head_median,
            "change": change,
            "change_low": low,
            "change_high": high,
            "p_value": p_value,
            "p_adjusted": p_adjusted,
            "noise": noise,
            "mde": mde,
            "verdict": verdict,
            "note": note,
        }
    )


def decide_instructions(
    pattern: str,
    implementation: str,
    scenario: str,
    base: Sequence[float],
    head: Sequence[float],
    *,
    min_effect: float,
) -> Comparison:
    """Instruction counts repeat almost exactly: a change is called when it passes `min_effect`
    and four times the spread of the repeats (no significance test: there is no sampling noise
    to test against, only the repeats' spread to rule out)."""
    import numpy as np

    base_median, head_median = float(np.median(base)), float(np.median(head))
    change = head_median / base_median - 1.0
    spread = max(
        (max(side) - min(side)) / float(np.median(side)) for side in (base, head) if len(side)
    )
    verdict: Verdict = "no change"
    if abs(change) >= min_effect and abs(change) > 4 * spread:
        verdict = "regression" if change > 0 else "improvement"
    return Comparison(
        pattern=pattern,
        implementation=implementation,
        target_rps=None,
        metric=f"instructions: {scenario}",
        base=list(base),
        head=list(head),
        base_median=base_median,
        head_median=head_median,
        change=change,
        change_low=change,
        change_high=change,
        p_value=None,
        p_adjusted=None,
        noise=spread,
        mde=max(min_effect, 4 * spread),
        verdict=verdict,
        note="instruction count (callgrind), repeats' spread as noise",
    )
