"""The results history: append-only lines, refused duplicates, change points found and not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bench.gate import history
from bench.gate.history import HistoryError, append, change_points, read, render
from bench.models import RunResult
from tests.unit.conftest import make_run, measured


def run_at(day: int, scale: float) -> RunResult:
    run = make_run(measured("go", [round(1000 * scale)] * 100, trials=3), run_id=f"r{day:02d}")
    return run.model_copy(update={"created_at": datetime(2026, 11, 1, tzinfo=UTC)
                                  + timedelta(days=day)})  # fmt: skip


def test_appending_adds_lines_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "h" / "history.jsonl"
    assert append(run_at(1, 1.0), path) == 3  # throughput, p50, p99 of one point
    first = path.read_bytes()
    append(run_at(2, 1.0), path)
    assert path.read_bytes().startswith(first)
    assert [e.run_id for e in read(path)] == ["r01"] * 3 + ["r02"] * 3
    with pytest.raises(HistoryError, match="run r01 is already in the history"):
        append(run_at(1, 1.0), path)
    assert len(read(path)) == 6


def test_a_corrupt_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append(run_at(1, 1.0), path)
    with path.open("a") as f:
        f.write('{"run_id": "x"}\n')
    with pytest.raises(HistoryError, match=r"history\.jsonl:4: created_at: Field required"):
        read(path)


def test_a_step_is_a_change_point_and_noise_is_not() -> None:
    rng = np.random.default_rng(3)
    flat = 100 + rng.normal(0, 2, 30)
    assert change_points(flat) == []
    step = np.concatenate([100 + rng.normal(0, 2, 15), 120 + rng.normal(0, 2, 15)])
    assert change_points(step) == [15]
    assert change_points([1.0, 2.0, 3.0]) == []  # too short to say


def test_render_draws_each_metric_and_lists_the_change(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    noise = np.random.default_rng(5).normal(1.0, 0.01, 12)
    for day in range(12):
        append(run_at(day, (1.3 if day >= 6 else 1.0) * noise[day]), path)
    md = render(path, tmp_path / "out")
    text = md.read_text()
    assert "fanout (quick) go @ 100 req/s p50: from run `r06`" in text
    assert text.count("from run") == 2  # p50 and p99, at r06 only
    assert "(+29" in text or "(+30" in text or "(+31" in text
    for metric in history.METRICS:
        assert (tmp_path / "out" / f"fanout_quick_{metric}.png").stat().st_size > 5_000


def test_an_empty_history_renders_a_line(tmp_path: Path) -> None:
    md = render(tmp_path / "none.jsonl", tmp_path / "out")
    assert "No runs in the history yet." in md.read_text()
