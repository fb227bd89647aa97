"""A pattern's parameters: typed like their defaults, durations with units, the load's own checks.

Every pattern declares the harness's load parameters (`LOAD_PARAMS`) beside its own; profiles and
`--param KEY=VALUE` override them, each value parsed to the type of its default. Durations
(`duration_s`, `warmup_s`, `budget_s`, any parameter ending in `_s`) accept `500ms`, `30s`, `2m`,
`1h` as wrk, k6 and vegeta do; a bare number is seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.stats.slo import Slo

if TYPE_CHECKING:  # the command line parses durations without loading pydantic's models
    from bench.models import ParamValue

#: Parameters every pattern declares, because the harness and its load engines need them.
LOAD_PARAMS = (
    "engine",  # the name of one of the pattern's [scenario.<engine>] tables
    "load_model",  # open-loop | closed-loop (closed-loop: engines that run users)
    "rate",  # open-loop target, requests/s
    "rates",  # "" or a sweep, "500,1000,2000"
    "arrival",  # constant | poisson
    "trials",  # repeated trials per implementation and rate, interleaved
    "slo",  # e.g. "p99<=50ms,errors<=0.1%": judges sweep points and the max-rate search
    "find_max",  # search the highest rate meeting the SLO instead of a fixed sweep
    "users",  # closed-loop Locust users ...
    "spawn_rate",  # ... and how fast they start
    "duration_s",
    "warmup_s",
)
#: Optional harness parameters and their defaults when a pattern does not declare them.
OPTIONAL_PARAMS: dict[str, ParamValue] = {
    "budget_s": 0.0,  # a profile's time budget for the measured trials; 0: none
    "cooldown_s": 2.0,  # no load after a trial's window, then the system's RSS again; 0: none
    "implementations": "",  # measured when --impl names none, comma-separated; empty: all
    "vary": "",  # each implementation at these values of its parameters (bench/variants.py)
    "workload": "",  # a [scenarios.<set>] every implementation takes (bench/catalog.py)
}
_CHOICES = {
    "load_model": ("open-loop", "closed-loop"),
    "arrival": ("constant", "poisson"),
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ParamError(Exception):
    """A parameter value that cannot be used; the message is one line."""


def parse_duration(text: str) -> float:
    """`500ms` → 0.5, `30s` → 30, `2m` → 120, `1.5` → 1.5 (seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 500ms, 30s, 2m or a number of seconds")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def is_duration(key: str) -> bool:
    return key.endswith("_s")


def parse_param(key: str, text: str, like: ParamValue) -> ParamValue:
    """Parse a command-line value to the type of the parameter's default."""
    try:
        if isinstance(like, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if is_duration(key) and isinstance(like, int | float):
            seconds = parse_duration(text)
            return int(seconds) if isinstance(like, int) and seconds.is_integer() else seconds
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        example = "500ms, 30s, 2m or seconds" if is_duration(key) else f"{like!r}"
        raise ParamError(
            f"--param {key}={text}: expected {type(like).__name__} like {example}"
        ) from None
    return text


def coerce_durations(params: dict[str, ParamValue]) -> None:
    """Duration parameters written as text in a system.toml (`warmup_s = "500ms"`) to seconds."""
    for key, value in params.items():
        if is_duration(key) and isinstance(value, str):
            try:
                params[key] = parse_duration(value)
            except ValueError as e:
                raise ParamError(f"{key}: {e}") from None


def rate_list(text: str) -> list[float]:
    """`500,1000` → [500.0, 1000.0]; every rate a positive number; "" → [] (no sweep)."""
    if not text.strip():
        return []
    try:
        rates = [float(part) for part in text.split(",")]  # "100,,200": float("") refuses it
    except ValueError:
        raise ParamError(f"--param rates={text}: expected rates like 500,1000,2000") from None
    if not all(math.isfinite(r) and r > 0 for r in rates):
        raise ParamError(f"--param rates={text}: every rate must be a positive number")
    return rates


def check_slo(text: str) -> None:
    """An SLO as `slo` holds it: empty (none) or e.g. `p99<=50ms,errors<=0.1%`."""
    if text.strip():
        try:
            Slo.parse(text)
        except ValueError as e:
            raise ParamError(f"--param slo={text}: {e}") from None


def _positive(params: Mapping[str, ParamValue], key: str, *, zero: bool = False) -> None:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"--param {key}={value}: must be a number")
    if not math.isfinite(value):
        raise ParamError(f"--param {key}={value}: must be a finite number")
    if value < 0 or (value == 0 and not zero):
        raise ParamError(f"--param {key}={value}: must be {'zero or more' if zero else 'positive'}")


def check_load_params(params: Mapping[str, ParamValue], engines: Mapping[str, bool]) -> None:
    """The harness's own parameters, once resolved; `engines` maps each engine the pattern has a
    table for to whether it runs closed-loop users."""
    if params["engine"] not in engines:
        known = ", ".join(engines) or "none"
        raise ParamError(
            f"--param engine={params['engine']}: the pattern has no [scenario.{params['engine']}] "
            f"table (engines: {known})"
        )
    for key, allowed in _CHOICES.items():
        if params[key] not in allowed:
            raise ParamError(f"--param {key}={params[key]}: expected one of {', '.join(allowed)}")
    for key in ("trials", "users", "duration_s", "rate"):
        _positive(params, key)
    _positive(params, "warmup_s", zero=True)
    _positive(params, "budget_s", zero=True)
    _positive(params, "cooldown_s", zero=True)
    closed = params["load_model"] == "closed-loop"
    if closed and not engines[str(params["engine"])]:
        raise ParamError(
            f"--param engine={params['engine']}: {params['engine']} is open-loop only "
            "(closed-loop users need an engine that runs users, such as locust)"
        )
    if closed and (params["rates"] or params["find_max"]):
        raise ParamError("rate sweeps and the max-rate search need open-loop load")
    rate_list(str(params["rates"]))
    check_slo(str(params["slo"]))


#: Seconds a trial costs beyond its warm-up and window (start, readiness, stop), for planning.
TRIAL_OVERHEAD_S = 2.5
#: What a budget may cut to: trials and the measured window.
MIN_TRIALS, MIN_DURATION_S = 2, 2.0


@dataclass(frozen=True)
class Budget:
    """What a run's time budget changed (parameters) and why (notes for the report)."""

    changes: dict[str, ParamValue] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    planned_s: float = 0.0


def _fixed_s(params: Mapping[str, ParamValue]) -> float:
    """Seconds of a trial besides its window: warm-up, cool-down and overhead."""
    cooldown = float(params.get("cooldown_s", 0.0))
    return float(params["warmup_s"]) + cooldown + TRIAL_OVERHEAD_S


def trials_seconds(params: Mapping[str, ParamValue], points: int) -> float:
    """Planned seconds of the trials: points × trials × (warm-up, window, cool-down, overhead)."""
    per_trial = _fixed_s(params) + float(params["duration_s"])
    return points * int(params["trials"]) * per_trial


def plan_budget(
    params: Mapping[str, ParamValue], implementations: int, rates: int, extra_points: int = 0
) -> Budget:
    """Fit the trials into `budget_s` (0: no budget): fewer trials first, down to MIN_TRIALS, then a
    shorter window, down to MIN_DURATION_S. The budget covers the measured trials, not building,
    the vectors or the studies; what it cut is said, and what it could not fit is said too."""
    budget = float(params.get("budget_s", 0.0))
    points = implementations * rates + extra_points
    planned = trials_seconds(params, points)
    if budget <= 0 or planned <= budget:
        return Budget(planned_s=planned)
    trials, duration = int(params["trials"]), float(params["duration_s"])
    changes: dict[str, ParamValue] = {}
    fixed = _fixed_s(params)
    affordable = int(budget // (points * (fixed + duration)))
    if max(MIN_TRIALS, affordable) < trials:
        changes["trials"] = max(MIN_TRIALS, affordable)
    new_trials = int(changes.get("trials", trials))
    if trials_seconds({**params, **changes}, points) > budget:
        fit = max(MIN_DURATION_S, math.floor(10 * (budget / (points * new_trials) - fixed)) / 10)
        if fit < duration:
            changes["duration_s"] = fit
    planned_after = trials_seconds({**params, **changes}, points)
    cut = ", ".join(f"{k} {params[k]} → {v}" for k, v in changes.items())
    done = f"cut {cut} (about {planned_after:.0f} s)" if changes else "nothing left to cut"
    note = (
        f"time budget {budget:g} s: {points} implementation × rate points × {trials} trials would "
        f"take about {planned:.0f} s; {done}"
    )
    if planned_after > budget:
        note += f", still over: no fewer than {MIN_TRIALS} trials of {MIN_DURATION_S:g} s"
    return Budget(changes=changes, notes=[note], planned_s=planned_after)
