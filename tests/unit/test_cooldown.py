"""The system's RSS after a cool-down: sampled by the window, planned by the budget, reported,
and optional in the result file (older files load without it)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import cast

from bench.collect.process import tree_rss
from bench.collect.window import SystemWindow
from bench.launch.supervisor import RunningProcess
from bench.models import ProcessStats
from bench.params import plan_budget, trials_seconds
from bench.report.markdown import render_markdown
from tests.unit.conftest import make_run, measured


class _Proc:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def window_of(pid: int, cooldown_s: float) -> SystemWindow:
    window = SystemWindow(cast(RunningProcess, _Proc(pid)), None, cooldown_s=cooldown_s)
    window.process = ProcessStats(cpu_seconds=1.0, cpu_percent=50.0, peak_rss_bytes=3 * 2**20)
    return window


def test_cool_down_records_the_trees_rss_after_waiting() -> None:
    window = window_of(os.getpid(), cooldown_s=0.01)
    window.cool_down()
    assert window.process is not None
    assert window.process.cooldown_s == 0.01
    assert window.process.rss_after_cooldown_bytes is not None
    assert window.process.rss_after_cooldown_bytes > 0
    assert window.process.peak_rss_bytes == 3 * 2**20  # the window's figures stay


def test_no_cool_down_when_zero_or_the_system_is_gone() -> None:
    window = window_of(os.getpid(), cooldown_s=0.0)
    window.cool_down()
    assert window.process is not None
    assert window.process.rss_after_cooldown_bytes is None
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = window_of(int(done.stdout), cooldown_s=0.01)
    gone.cool_down()
    assert gone.process is not None
    assert gone.process.rss_after_cooldown_bytes is None
    assert tree_rss(int(done.stdout)) is None
    never = SystemWindow(cast(RunningProcess, _Proc(os.getpid())), None, cooldown_s=0.01)
    never.cool_down()  # the window never closed: nothing to add to
    assert never.process is None


def test_the_budget_plans_the_cool_down() -> None:
    base = {"trials": 3, "warmup_s": 1.0, "duration_s": 4.0, "budget_s": 0.0}
    assert trials_seconds({**base, "cooldown_s": 2.0}, 8) == trials_seconds(base, 8) + 8 * 3 * 2.0
    # 16 points × 2 trials × (1 + 1 + 2.5 + 2.75) = 232 s: the cool-down shortens the window.
    cut = plan_budget({**base, "cooldown_s": 1.0, "budget_s": 116.0}, implementations=2, rates=4)
    assert cut.changes["trials"] == 2
    assert 2.0 <= float(cut.changes["duration_s"]) < 3.0
    assert cut.planned_s <= 116.0 + 1.0


def test_results_without_the_cool_down_load_and_report_a_dash() -> None:
    run = make_run(measured("go", [1000] * 100))
    data = run.model_dump(mode="json")
    for impl in data["implementations"]:
        for point in impl["points"]:
            for trial in point["trials"]:
                assert trial["process"].pop("rss_after_cooldown_bytes") is None
                trial["process"].pop("cooldown_s")
    old = type(run).model_validate(data)  # an older file: the fields are absent
    text = render_markdown(old, None, [])
    assert "| peak RSS MiB | RSS after cool-down MiB |" in text
    row = next(line for line in text.splitlines() if line.startswith("| go |"))
    assert "| 20.0 | — |" in row


def test_the_report_shows_peak_and_after_cool_down_per_point() -> None:
    run = make_run(measured("go", [1000] * 100))
    point = run.implementations[0].points[0]
    trials = [
        t.model_copy(update={"process": t.process.model_copy(
            update={"rss_after_cooldown_bytes": (12 + t.index) * 2**20, "cooldown_s": 2.0})})
        for t in point.trials
    ]  # fmt: skip
    cooled = run.model_copy(update={"implementations": [run.implementations[0].model_copy(
        update={"points": [point.model_copy(update={"trials": trials})]})]})  # fmt: skip
    text = render_markdown(cooled, None, [])
    row = next(line for line in text.splitlines() if line.startswith("| go |"))
    assert "| 20.0 | 14.0 |" in row  # peak, and the highest after the cool-down
    trial_row = next(line for line in text.splitlines() if line.startswith("| go | 100 | 1 |"))
    assert "| 20.0 | 12.0 |" in trial_row
