"""The adaptive in-flight limit of the Python services (systems/overload.py): AIMD on loop lag."""

from __future__ import annotations

import asyncio
import time

from systems.overload import AdaptiveLimit


def test_late_ticks_cut_by_a_quarter_and_on_time_ticks_add_one() -> None:
    limit = AdaptiveLimit(100, max_lag=0.010)
    steps = [  # (how late a tick ran, the limit after it)
        (0.0, 100),  # on time at the maximum: stays
        (0.010, 75),  # the bound itself is late: x 0.75
        (0.050, 56),  # 56.25
        (0.001, 57),  # on time: + 1
        (0.009, 58),  # under the bound is on time
        (-0.002, 59),  # early (timer granularity) is on time
        (0.200, 44),  # 44.0625
    ]
    for late, want in steps:
        limit.observe(late)
        assert limit.value == want, late


def test_the_limit_stays_between_1_and_the_maximum() -> None:
    limit = AdaptiveLimit(8, max_lag=0.010)
    for _ in range(50):
        limit.observe(1.0)
    assert limit.value == 1
    for _ in range(500):
        limit.observe(0.0)
    assert limit.value == 8


def test_a_stalled_loop_lowers_the_limit_and_a_quiet_one_restores_it() -> None:
    async def scenario() -> tuple[int, int, int]:
        limit = AdaptiveLimit(64, max_lag=0.010, interval=0.005)
        limit.start()
        try:
            await asyncio.sleep(0.05)
            before = limit.value
            for _ in range(3):  # three stalls of 60 ms: every tick after one runs late
                time.sleep(0.06)  # noqa: ASYNC251 - the point: the loop stalls
                await asyncio.sleep(0)
                await asyncio.sleep(0.001)
            during = limit.value
            deadline = time.monotonic() + 10.0
            while limit.value < 64 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            return before, during, limit.value
        finally:
            limit.stop()

    before, during, after = asyncio.run(scenario())
    assert before == 64
    assert during < 64
    assert after == 64


def test_no_lag_bound_starts_no_timer_and_fixes_the_limit() -> None:
    async def scenario() -> int:
        limit = AdaptiveLimit(16, max_lag=0.0)
        limit.start()
        time.sleep(0.05)  # noqa: ASYNC251 - a stall that would count as late
        await asyncio.sleep(0.05)
        assert limit._handle is None
        limit.stop()
        return limit.value

    assert asyncio.run(scenario()) == 16
