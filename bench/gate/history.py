"""The results history: an append-only JSON-lines file of every main-branch run, and its change
points.

`append` adds one line per (implementation, rate, metric) of a run: the median over its valid
trials with the interval, the run's time, git revision and profile. Lines are only ever added
(the file is opened for appending, never rewritten), and a run already in the file is refused,
so appending twice is harmless.

`render` reads the file into pandas, finds change points in each series (one implementation at
one rate, one metric, one profile) with ruptures' PELT search, and draws each pattern's metrics
against time with the change points marked. PELT splits a series where the cost of the split is
lower than a penalty; the series is first scaled by its robust spread (the median absolute
deviation of successive differences), so the penalty `PENALTY_PER_LOG_N × log n` means the same
on every metric whatever its unit and noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from bench.models import RunResult, first_error
from bench.store import write_atomic

if TYPE_CHECKING:  # pandas, numpy, ruptures and matplotlib are imported where used: slow to import
    import pandas as pd

METRICS: Final = ("throughput_rps", "p50", "p99")
PENALTY_PER_LOG_N: Final = 3.0
#: Fewest points a series needs before change points are looked for, and fewest runs a level
#: needs to count as one.
MIN_POINTS: Final = 6
MIN_SEGMENT: Final = 3


class HistoryError(Exception):
    """A history line or a run that cannot be used: one line naming the file and the place."""


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    created_at: str
    git_sha: str | None
    pattern: str
    profile: str
    implementation: str
    target_rps: float | None
    metric: str
    median: float
    low: float
    high: float
    n: int


def entries(run: RunResult) -> list[Entry]:
    """The history lines of one run: valid points only (an invalid one is not the system's)."""
    found = []
    for impl in run.implementations:
        for point in impl.points:
            if not point.valid:
                continue
            for metric in METRICS:
                e = point.summary.get(metric)
                if e is None:
                    continue
                found.append(
                    Entry(
                        run_id=run.run_id,
                        created_at=run.created_at.isoformat(),
                        git_sha=run.environment.git_sha,
                        pattern=run.scenario.pattern,
                        profile=run.scenario.profile,
                        implementation=impl.name,
                        target_rps=point.target_rps,
                        metric=metric,
                        median=e.median,
                        low=e.low,
                        high=e.high,
                        n=e.n,
                    )
                )
    return found


def read(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Entry.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise HistoryError(f"{path}:{number}: not JSON: {e}") from None
        except ValidationError as e:
            raise HistoryError(f"{path}:{number}: {first_error(e)}") from None
    return out


def append(run: RunResult, path: Path) -> int:
    """Append a run's lines; returns how many. A run already in the history is refused."""
    if any(e.run_id == run.run_id for e in read(path)):
        raise HistoryError(f"{path}: run {run.run_id} is already in the history")
    lines = entries(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for entry in lines:
            f.write(entry.model_dump_json() + "\n")
    return len(lines)


def change_points(values: Iterable[float]) -> list[int]:
    """Indices where a new level starts (PELT, L2 cost, on the robustly scaled series)."""
    import numpy as np
    import ruptures as rpt  # type: ignore[import-untyped]

    signal = np.asarray(list(values), dtype=float)
    n = signal.size
    if n < MIN_POINTS:
        return []
    diffs = np.diff(signal)
    scale = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
    if scale <= 0:
        scale = float(np.std(signal)) or 1.0
    algo = rpt.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit((signal / scale).reshape(-1, 1))
    ends: list[int] = algo.predict(pen=PENALTY_PER_LOG_N * math.log(n))
    return [int(e) for e in ends[:-1]]  # the last "end" is n itself


def frame(history: list[Entry]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame([e.model_dump() for e in history])
    if df.empty:
        return df
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df["rate"] = df["target_rps"].fillna(0.0)
    return df.sort_values("created_at")


def render(path: Path, out: Path) -> Path:
    """history.md and one PNG per (pattern, profile, metric), change points marked."""
    history = read(path)
    out.mkdir(parents=True, exist_ok=True)
    df = frame(history)
    lines = [f"# History — {path}", ""]
    if df.empty:
        lines += ["No runs in the history yet.", ""]
        md = out / "history.md"
        write_atomic(md, "\n".join(lines))
        return md
    found: list[str] = []
    from bench.report.agg import plt

    for (pattern, profile, metric), group in df.groupby(["pattern", "profile", "metric"]):
        fig, ax = plt.subplots(figsize=(9, 4))
        for (impl, rate), series in group.groupby(["implementation", "rate"]):
            label = f"{impl} @ {rate:,.0f} req/s" if rate else str(impl)
            line = ax.plot(series["created_at"], series["median"], marker="o", label=label)[0]
            values = series["median"]
            cuts = change_points(values)
            bounds = [0, *cuts, len(values)]
            for k, index in enumerate(cuts, 1):
                before = float(values.iloc[bounds[k - 1] : index].median())
                after = float(values.iloc[index : bounds[k + 1]].median())
                row = series.iloc[index]
                ax.axvline(row["created_at"], color=line.get_color(), linestyle="--", alpha=0.6)
                found.append(
                    f"- {pattern} ({profile}) {label} {metric}: from run `{row['run_id']}` "
                    f"(git `{str(row['git_sha'])[:10]}`) {before:,.3g} → {after:,.3g} "
                    f"({100 * (after / before - 1):+.1f}%)"
                )
        unit = "req/s" if metric == "throughput_rps" else "ms"
        ax.set_title(f"{pattern} — {metric} ({profile} profile)")
        ax.set_ylabel(f"{metric} ({unit}), median of the run's trials")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        fig.tight_layout()
        png = f"{pattern}_{profile}_{metric}.png"
        fig.savefig(out / png, dpi=110)
        plt.close(fig)
        lines += [f"![{pattern} {metric}]({png})", ""]
    lines = [*lines[:2], "## Change points", "", *(found or ["None found."]), "", *lines[2:]]
    md = out / "history.md"
    write_atomic(md, "\n".join(lines))
    return md
