"""The Python worker pools: same outputs as inline, in task order, workers and deadline checked.

One process pool is started per test that needs it (forkserver, about 0.1-0.5 s each).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from systems.workerpool.kernels import run_task
from systems.workerpool.pools import (
    POOL_KINDS,
    PoolKind,
    Task,
    make_executor,
    run_pool,
    run_tasks,
    warm_up,
)

# Small and mixed, with costs that differ so that finishing order differs from task order.
TASKS = [
    Task("spin", 3, 20_000, 0),
    Task("hash", 4, 2, 64),
    Task("spin", 5, 10, 0),
    Task("hash", 6, 3, 4096),
    Task("spin", 7, 5_000, 0),
    Task("hash", 2**64 - 1, 1, 8),
    Task("spin", 0, 0, 0),
]
EXPECTED = [run_task(*task) for task in TASKS]

# About 0.2 s of spin on a 2-core CI machine; a deadline of 20 ms cuts it off.
SLOW = Task("spin", 1, 1_000_000, 0)


@pytest.mark.parametrize("kind", POOL_KINDS)
@pytest.mark.parametrize("workers", [1, 2])
def test_run_pool_matches_inline_in_task_order(kind: PoolKind, workers: int) -> None:
    assert asyncio.run(run_pool(kind, workers, TASKS)) == EXPECTED


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_run_pool_of_no_tasks_is_empty(kind: PoolKind) -> None:
    assert asyncio.run(run_pool(kind, 1, [])) == []


@pytest.mark.parametrize("kind", POOL_KINDS)
@pytest.mark.parametrize("workers", [0, -1])
def test_fewer_than_one_worker_is_refused(kind: PoolKind, workers: int) -> None:
    with pytest.raises(ValueError, match=r"^workers "):
        make_executor(kind, workers)
    with pytest.raises(ValueError, match=r"^workers "):
        asyncio.run(run_pool(kind, workers, TASKS))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^kind "):
        make_executor("greenlets", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_invalid_task_is_refused_before_any_runs(kind: PoolKind) -> None:
    with pytest.raises(ValueError, match=r"^size "):
        asyncio.run(run_pool(kind, 1, [SLOW, Task("hash", 0, 1, 12)]))


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_deadline_cuts_off_a_slow_batch(kind: PoolKind) -> None:
    # sync notices the deadline between tasks, so it needs more than one task to notice it.
    async def slow_batch() -> list[str]:
        return await run_pool(kind, 1, [SLOW, SLOW], deadline=0.02)

    with pytest.raises(TimeoutError):
        asyncio.run(slow_batch())


def test_deadline_drops_queued_tasks_on_threads() -> None:
    # One worker, four slow tasks: the three still queued at the deadline never run.
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        asyncio.run(run_pool("threads", 1, [SLOW] * 4, deadline=0.02))
    one_task = time.perf_counter() - start
    start = time.perf_counter()
    run_task(*SLOW)
    assert one_task < 2.5 * (time.perf_counter() - start) + 0.1


def test_warm_pool_runs_several_batches() -> None:
    async def batches() -> list[list[str]]:
        executor = make_executor("processes", 2)
        assert executor is not None
        try:
            await warm_up(executor, 2)
            return [await run_tasks(executor, TASKS) for _ in range(3)]
        finally:
            executor.shutdown(cancel_futures=True)

    assert asyncio.run(batches()) == [EXPECTED] * 3
