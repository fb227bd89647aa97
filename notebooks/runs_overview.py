# %% [markdown]
# # Runs overview
#
# Every stored run as one pandas table, and p50/p95/p99 of each implementation across runs.
# A percent-format notebook: open it in Jupyter with jupytext, or run it as a script
# (`python notebooks/runs_overview.py [--runs-dir DIR] [--out DIR]`); the tests run it, so it
# cannot rot.

# %%
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.store import runs_dataframe

ROOT = Path(__file__).resolve().parent.parent
cli = argparse.ArgumentParser()
cli.add_argument("--runs-dir", type=Path, default=ROOT / "results" / "runs")
cli.add_argument("--out", type=Path, default=ROOT / "results" / "runs")
args, _ = cli.parse_known_args()

# %%
runs = runs_dataframe(args.runs_dir)
print(f"{len(runs)} measurements in {runs['run_id'].nunique() if len(runs) else 0} runs")

# %% [markdown]
# Latency of each implementation, run by run (only measured implementations).

# %%
measured = runs[runs["status"] == "ok"] if len(runs) else runs
if len(measured):
    latency = [c for c in ("p50_ms", "p95_ms", "p99_ms") if c in measured]
    table = measured.pivot_table(
        index=["pattern", "run_id"], columns="implementation", values=latency
    )
    print(table.round(2).to_string())

    fig, ax = plt.subplots(figsize=(8, 4))
    for impl, rows in measured.groupby("implementation"):
        ax.plot(rows["created_at"], rows["p99_ms"], marker="o", label=f"{impl} p99")
    ax.set_ylabel("ms")
    ax.set_title("p99 by run")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "runs_overview.png")
    print(f"wrote {args.out / 'runs_overview.png'}")
