"""Which fault each run gets, and when: a pure function of the seed.

Kinds go round-robin in a fixed order (`options.FAULT_KINDS`: the four main ones first, so four
runs inject each of them once and forty runs each kind eight times); the seed draws the moments.

- A killed system or support is killed inside a measured window: in trial `trial` (drawn among
  the run's planned trials), after the warm-up and before the window's end, so the trial it
  broke is known without doubt.
- A signal to the harness lands in a trial (anywhere in its warm-up and window: the system, its
  supports and the generator are all running) or, one time in four, during start-up: up to two
  seconds after the run's logs folder appeared (its builds, then its test vectors).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.soak.models import Fault
from bench.soak.options import FAULT_KINDS, FaultKind

#: Kept off either end of a window: a kill this close to its end may land after the load stops.
MARGIN_S = 0.3
STARTUP_SHARE = 0.25
STARTUP_MAX_S = 2.0


@dataclass(frozen=True, kw_only=True)
class Shape:
    """What a run will do, as far as moments go: how many measured trials, how long each."""

    trials: int
    warmup_s: float
    duration_s: float

    @property
    def window_s(self) -> float:
        return self.warmup_s + self.duration_s


def _within(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high) if high > low else max(0.0, (low + high) / 2)


def plan(
    runs: int, seed: int, shape: Shape, kinds: Sequence[FaultKind] = FAULT_KINDS
) -> list[Fault]:
    """One fault per run: kinds round-robin, moments drawn from `seed`."""
    if not kinds:
        raise ValueError("no fault kinds to inject")
    if shape.trials < 1:
        raise ValueError("a run without measured trials has no moment to inject a fault in")
    rng = random.Random(seed)
    faults = []
    for run in range(runs):
        kind = kinds[run % len(kinds)]
        startup = rng.random() < STARTUP_SHARE
        trial = rng.randrange(shape.trials)
        if kind.startswith("harness") and startup:
            faults.append(Fault(run=run, kind=kind, phase="startup", trial=None,
                                offset_s=round(rng.uniform(0.0, STARTUP_MAX_S), 3)))  # fmt: skip
            continue
        if kind.startswith("harness"):
            offset = _within(rng, MARGIN_S, shape.window_s - MARGIN_S)
        else:
            offset = _within(rng, shape.warmup_s + MARGIN_S, shape.window_s - MARGIN_S)
        faults.append(
            Fault(run=run, kind=kind, phase="trial", trial=trial, offset_s=round(offset, 3))
        )
    return faults
