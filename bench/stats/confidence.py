"""Medians of repeated trials with bootstrap confidence intervals. Pure functions: no I/O.

A benchmark repeats each measurement a few times because a shared machine drifts; a single
number hides how much. The median is the summary (one slow trial does not move it) and the
interval says how far the true median could plausibly lie from it, so a comparison can ask
for significance as well as a minimum effect, as pyperf does.

With the 3 to 5 trials typical here the bootstrap of a median is coarse: every resampled
median is one of the sample values, so the interval is close to the sample range, and the
nominal level is not honoured. The range of n trials covers the true median with probability
1 - 2 * 0.5**n: 75% for 3 trials, 94% for 5. Read such an interval as "the trials spread this
far", not as a precise 95% statement.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and scipy are imported where used: the command line starts fast
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Estimate:
    """A median over n trials and its confidence interval, in the unit of the samples."""

    median: float
    low: float
    high: float
    n: int

    def relative_halfwidth(self) -> float:
        """Half the interval as a fraction of the median: 0.05 means ±5%."""
        if self.high == self.low:
            return 0.0
        if self.median == 0.0:
            return math.inf
        return (self.high - self.low) / 2.0 / abs(self.median)


def median_ci(
    samples: Sequence[float],
    confidence: float = 0.95,
    *,
    resamples: int = 9999,
    seed: int = 0,
) -> Estimate:
    """The sample median and a bootstrap confidence interval around it, reproducible by seed.

    A single trial has no interval: low = high = median, and so do samples that are all equal.
    The interval is BCa where scipy can compute it and percentile where BCa is undefined (its
    acceleration divides by zero when the leave-one-out medians coincide, common with few
    trials). See the module docstring for how little 3 to 5 trials can say.
    """
    import numpy as np

    values = _checked(samples)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    median = float(np.median(values))
    if values.min() == values.max():
        return Estimate(median=median, low=median, high=median, n=values.size)
    low, high = _bootstrap_interval(values, confidence, resamples, seed)
    # BCa corrects for bias and skew, and with a handful of skewed samples it can place the
    # interval wholly beside the sample median; report it widened to contain the median, so that
    # every reader (tables, error bars) may rely on low <= median <= high.
    return Estimate(median=median, low=min(low, median), high=max(high, median), n=values.size)


def summarize(
    trials: Sequence[Mapping[str, float]], confidence: float = 0.95
) -> dict[str, Estimate]:
    """An Estimate per metric, over the metrics that every trial reports (in the first's order)."""
    if not trials:
        raise ValueError("no trials to summarize")
    shared = [key for key in trials[0] if all(key in trial for trial in trials[1:])]
    return {key: median_ci([trial[key] for trial in trials], confidence) for key in shared}


def _checked(samples: Sequence[float]) -> npt.NDArray[np.float64]:
    import numpy as np

    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("median_ci needs at least one sample, got none")
    not_finite = np.flatnonzero(~np.isfinite(values))
    if not_finite.size:
        index = int(not_finite[0])
        raise ValueError(f"sample {index} is {values[index]}, not a finite number")
    return values


def _bootstrap_interval(
    values: npt.NDArray[np.float64], confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    try:
        with warnings.catch_warnings():
            # scipy reports a degenerate BCa (DegenerateDataWarning is a RuntimeWarning) and numpy
            # a division by zero as warnings; turn both into errors so as to fall back.
            warnings.simplefilter("error", RuntimeWarning)
            low, high = _bootstrap(values, confidence, resamples, seed, "BCa")
        if not (math.isnan(low) or math.isnan(high)):
            return low, high
    except RuntimeWarning:
        pass
    return _bootstrap(values, confidence, resamples, seed, "percentile")


def _bootstrap(
    values: npt.NDArray[np.float64], confidence: float, resamples: int, seed: int, method: str
) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    result = stats.bootstrap(
        (values,),
        np.median,
        n_resamples=resamples,
        confidence_level=confidence,
        method=method,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
