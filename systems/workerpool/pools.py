"""The Python worker pools: a batch of kernel tasks run inline, on threads, or on processes.

``make_executor`` creates a pool once and ``warm_up`` starts its workers, so a benchmark times
only the tasks (pool start-up is not a per-task cost); ``run_tasks`` runs one batch on it and
``run_pool`` does all three for a single batch.

A batch runs under ``asyncio.timeout(deadline)``. On threads and processes each task is an
``asyncio.TaskGroup`` task awaiting ``loop.run_in_executor``; when the deadline passes the group
cancels them, which drops the tasks still queued, while those already running finish in their
worker (a thread or a process cannot be interrupted) and their results are discarded. ``sync``
runs the tasks inline, blocking the event loop, and checks the deadline between tasks.

Processes come from the ``forkserver`` start method: a clean server process, started once
without the parent's threads, forks each worker. Plain ``fork`` would copy a parent that runs
an event loop and executor threads, and a lock held by one of those threads at the fork stays
held forever in the child (the deadlock seen with pools forked from such parents); ``spawn``
would be as safe but starts a fresh interpreter per worker. Either way the task function,
``kernels.run_task``, must be importable at top level, and a script that creates a pool needs an
``if __name__ == "__main__":`` guard, because each worker imports the main module.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Final, Literal, NamedTuple

from systems.workerpool.kernels import check, run_task

PoolKind = Literal["sync", "threads", "processes"]
POOL_KINDS: Final[tuple[PoolKind, ...]] = ("sync", "threads", "processes")

# Generous: a batch is meant to take seconds at most; this only stops a stuck one.
DEFAULT_DEADLINE: Final = 300.0


class Task(NamedTuple):
    """One kernel call; the fields are ``run_task``'s arguments in order."""

    kernel: str
    seed: int
    rounds: int
    size: int


def make_executor(kind: PoolKind, workers: int) -> Executor | None:
    """A pool of ``workers`` threads or processes; None for ``sync``, which needs none."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if kind == "sync":
        return None
    if kind == "threads":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workerpool")
    if kind == "processes":
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    raise ValueError(f"kind must be one of {', '.join(POOL_KINDS)}, not {kind!r}")


async def warm_up(executor: Executor | None, workers: int) -> None:
    """Start every worker of the pool: one small task per worker, all submitted at once.

    A process pool started by forkserver starts a worker per submitted task while none is idle,
    so ``workers`` concurrent tasks start them all (and import the kernels in each).
    """
    await run_tasks(executor, [Task("spin", seed, 1000, 0) for seed in range(workers)])


async def run_tasks(
    executor: Executor | None, tasks: Sequence[Task], *, deadline: float = DEFAULT_DEADLINE
) -> list[str]:
    """Run a batch on ``executor`` (inline when None) and return the outputs in task order.

    Every task is checked before any runs, so an invalid one raises ValueError and runs nothing.
    Raises TimeoutError when the batch is not done within ``deadline`` seconds.
    """
    for task in tasks:
        check(task.kernel, task.rounds, task.size, task.seed)
    async with asyncio.timeout(deadline) as scope:
        if executor is None:
            return _run_inline(tasks, scope)
        loop = asyncio.get_running_loop()

        async def submit(task: Task) -> str:
            return await loop.run_in_executor(executor, run_task, *task)

        async with asyncio.TaskGroup() as group:
            running = [group.create_task(submit(task)) for task in tasks]
        return [done.result() for done in running]


def _run_inline(tasks: Sequence[Task], scope: asyncio.Timeout) -> list[str]:
    loop = asyncio.get_running_loop()
    when = scope.when()
    results = []
    for task in tasks:
        # Nothing awaits here, so asyncio.timeout cannot cut in: check the deadline ourselves.
        if when is not None and loop.time() >= when:
            raise TimeoutError
        results.append(run_task(*task))
    return results


async def run_pool(
    kind: PoolKind, workers: int, tasks: Sequence[Task], *, deadline: float = DEFAULT_DEADLINE
) -> list[str]:
    """Run one batch on a fresh pool of ``workers`` and shut the pool down; see ``run_tasks``.

    The shutdown waits (in a thread, not blocking the event loop) for tasks already running.
    """
    executor = make_executor(kind, workers)
    try:
        return await run_tasks(executor, tasks, deadline=deadline)
    finally:
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
