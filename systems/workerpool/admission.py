"""Admission and the three ways a /work task runs: inline on the loop, on threads, on processes.

Admission is one count, ``in_flight``: tasks admitted and unfinished, at most ``workers +
queue`` (the pool's ``capacity``); a task beyond it raises ``Overloaded`` at once. A thread or
process pool may be given an ``AdaptiveLimit`` (``systems/overload.py``) whose ``value``, at
most the capacity, is lowered while the event loop runs late (worker threads holding the GIL,
worker processes taking the CPUs): a task beyond it raises ``Behind``. The deadline
is a ``time.monotonic()`` instant, one clock for every process on the machine. A cancelled
``run`` (the client went away) drops its task exactly as the deadline does.

- ``threads`` and ``processes`` (``ExecutorPool``): the task goes to the executor with
  ``submit``; the slot is released by the concurrent future's done-callback (on the loop
  thread), so it counts until the kernel has finished or the task was dropped before it
  started, whether or not anyone still waits for the answer. ``run`` awaits the future under
  ``asyncio.timeout``; at the deadline it cancels the future, which drops a task still in the
  executor's queue. A process pool hands up to ``workers + 1`` tasks to its worker processes
  ahead of time, where the future can no longer be cancelled: for those ``run`` sets the task's
  byte on a ``CancelBoard`` (shared memory), and ``execute``, which also checks the deadline
  itself, skips the task when it would start. A kernel already running finishes.
- ``sync`` (``InlinePool``): the kernel runs inline on the event-loop thread. An admitted task
  yields once, then waits for its turn on a FIFO ``asyncio.Lock``, under the deadline; a task
  whose deadline has passed when its turn comes is dropped without running. With its turn it
  first lets the loop run a few more turns (``SETTLE_TURNS``), so that every request that
  arrived while the loop was blocked is read and admitted or refused before the next kernel
  blocks it again: a request needs up to three loop turns from being readable to being
  admitted. Arrivals are only read between two kernels, so for sync the deadline runs from the
  moment a request is read, after the kernel that was running when it arrived.

A kernel that finished after the deadline raises TimeoutError (its output is discarded) in
every pool; its run time is still recorded in ``workerpool_task_duration_seconds``, measured
where it ran. A worker process imports this module (for ``execute``), so it imports no more
than the kernels and the standard library.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor, Future
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING, Final

from systems.workerpool.kernels import hash_chain, spin
from systems.workerpool.pools import PoolKind, Task, make_executor, warm_up

if TYPE_CHECKING:
    from systems.overload import AdaptiveLimit
    from systems.workerpool.metrics import Metrics

# Loop turns from the loop unblocking to a request's admission, measured with uvloop and
# aiohttp: 2 for a request on a kept-alive connection (read, then its handler runs), 3 on a new
# connection (accepted first). A sync kernel waits this many turns (about 1.5 µs each) first.
SETTLE_TURNS: Final = 4


class CancelBoard:
    """One byte per admission slot, in shared memory: 1 when a task handed to a process pool is
    no longer wanted (its deadline passed, its client went away, the service is stopping).

    A process pool moves up to ``workers + 1`` tasks into its call queue ahead of time, and from
    then on their futures cannot be cancelled; the worker process reads the task's byte when it
    would start the task, and skips it if set. A slot is taken per admitted task and given back
    when its future is done, so a slot is never reused while a worker may still read it.
    """

    def __init__(self, slots: int) -> None:
        self._shm = SharedMemory(create=True, size=max(slots, 1))
        self.name = self._shm.name
        buf = self._shm.buf
        assert buf is not None
        self._buf = buf
        self._free = list(range(slots - 1, -1, -1))
        self._closed = False

    def take(self) -> int:
        return self._free.pop()

    def cancel(self, slot: int) -> None:
        if not self._closed:
            self._buf[slot] = 1

    def give_back(self, slot: int) -> None:
        if not self._closed:
            self._buf[slot] = 0
            self._free.append(slot)

    def cancel_all(self) -> None:
        if not self._closed:
            self._buf[:] = b"\x01" * len(self._buf)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._shm.close()
            self._shm.unlink()


_boards: dict[str, SharedMemory] = {}  # in a worker process: the boards it has attached


def _cancelled(board: str, slot: int) -> bool:
    shm = _boards.get(board)
    if shm is None:
        shm = _boards[board] = SharedMemory(board)
    buf = shm.buf
    assert buf is not None
    return buf[slot] != 0


def execute(
    kernel: str,
    seed: int,
    rounds: int,
    size: int,
    deadline: float,
    board: str | None = None,
    slot: int = 0,
) -> tuple[str, float] | None:
    """Run one validated task where it was sent: its output and the kernel's run time in seconds.

    None, without running, when ``deadline`` (``time.monotonic()``, one clock for every process
    on the machine) has passed or the task's byte on the ``CancelBoard`` named ``board`` is set:
    the task is no longer wanted. A top-level function, so that a process pool can pickle it.
    """
    if time.monotonic() >= deadline or (board is not None and _cancelled(board, slot)):
        return None
    start = time.perf_counter()
    output = spin(seed, rounds) if kernel == "spin" else hash_chain(seed, rounds, size)
    return output, time.perf_counter() - start


class Overloaded(Exception):
    """``workers + queue`` tasks are already admitted and unfinished."""


class Behind(Overloaded):
    """Fewer than ``workers + queue`` are admitted, but as many as the adaptive limit allows
    while the event loop runs late."""


class ShuttingDown(Exception):
    """The service is stopping and the drain time is over: the task will not run."""


class InlinePool:
    """``sync``: one task at a time, inline on the event-loop thread, in arrival order."""

    def __init__(self, capacity: int, metrics: Metrics) -> None:
        self.in_flight = 0
        self.stop_at: float | None = None  # when stopping: no kernel starts after this
        self._capacity = capacity
        self._metrics = metrics
        self._turn = asyncio.Lock()  # FIFO: waiters are woken in the order they came

    async def run(self, task: Task, deadline: float) -> str:
        """The task's output; raises Overloaded, or TimeoutError when the deadline passed first,
        or ShuttingDown when its turn comes after ``stop_at``."""
        if self.in_flight >= self._capacity:
            raise Overloaded
        self.in_flight += 1
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await asyncio.sleep(0)  # let the requests read in this loop turn be admitted
                await self._turn.acquire()
            try:
                # Before the loop blocks again, let every request that arrived while the last
                # kernel ran be read and admitted or refused.
                for _ in range(SETTLE_TURNS):
                    await asyncio.sleep(0)
                # The loop may be too busy to run the drain's timer in time: check here.
                if self.stop_at is not None and time.monotonic() >= self.stop_at:
                    raise ShuttingDown
                result = execute(*task, deadline)  # blocks the loop: the point of this pool
            finally:
                self._turn.release()
        finally:
            self.in_flight -= 1
        if result is None:
            raise TimeoutError
        output, seconds = result
        self._metrics.observe_task(task.kernel, seconds)
        if time.monotonic() >= deadline:
            raise TimeoutError  # it ran, but finished too late: the output is discarded
        return output

    async def start(self) -> None:
        """Nothing to start: the kernels run on the loop's thread."""

    async def close(self) -> None:
        """Nothing to shut down."""


class ExecutorPool:
    """``threads`` and ``processes``: tasks submitted to a concurrent.futures executor.

    ``board`` is given for a process pool (see ``CancelBoard``); a thread pool's queued futures
    can always be cancelled. ``limit``, when given, lowers the capacity while the loop is late.
    """

    def __init__(
        self,
        executor: Executor,
        workers: int,
        capacity: int,
        metrics: Metrics,
        board: CancelBoard | None,
        limit: AdaptiveLimit | None = None,
    ) -> None:
        self.in_flight = 0
        self._executor = executor
        self._workers = workers
        self._capacity = capacity
        self._metrics = metrics
        self._board = board
        self._limit = limit

    async def run(self, task: Task, deadline: float) -> str:
        """The task's output; raises Overloaded, or TimeoutError when the deadline passed first.

        Cancelled (the client went away) or timed out, it cancels the task, which drops it if
        it has not started; a running kernel finishes and releases its slot then.
        """
        if self.in_flight >= self._capacity:
            raise Overloaded
        if self._limit is not None and self.in_flight >= self._limit.value:
            raise Behind
        loop = asyncio.get_running_loop()
        board = self._board
        slot = 0 if board is None else board.take()
        try:
            future = self._executor.submit(
                execute, *task, deadline, None if board is None else board.name, slot
            )
        except BaseException:
            if board is not None:
                board.give_back(slot)
            raise
        self.in_flight += 1

        def done(f: Future[tuple[str, float] | None]) -> None:  # in a pool or the loop thread
            loop.call_soon_threadsafe(self._finished, task.kernel, slot, f)

        future.add_done_callback(done)
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                result = await asyncio.wrap_future(future)
        finally:
            # Drops the task if still queued; a process pool may have handed it to its
            # workers already, where the board tells them to skip it.
            if not future.cancel() and not future.done() and board is not None:
                board.cancel(slot)
        if result is None:  # skipped: it would have started after its deadline
            raise TimeoutError
        return result[0]

    def _finished(self, kernel: str, slot: int, future: Future[tuple[str, float] | None]) -> None:
        self.in_flight -= 1
        if self._board is not None:
            self._board.give_back(slot)
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        if result is not None:
            self._metrics.observe_task(kernel, result[1])

    async def start(self) -> None:
        """Start every worker (for processes: fork them and import the kernels in each)."""
        await warm_up(self._executor, self._workers)

    async def close(self) -> None:
        """Drop every task not started, wait for the running kernels, shut the pool down."""
        if self._board is not None:
            self._board.cancel_all()
        try:
            await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        finally:
            if self._board is not None:
                self._board.close()


Pool = InlinePool | ExecutorPool


def make_pool(
    kind: PoolKind,
    workers: int,
    capacity: int,
    metrics: Metrics,
    limit: AdaptiveLimit | None = None,
) -> Pool:
    """A pool of ``kind`` that admits ``capacity`` tasks, its workers not started yet.

    ``limit`` applies to thread and process pools: inline kernels block the loop by design, so
    its lateness says nothing there (the queue bounds the wait instead).
    """
    executor = make_executor(kind, workers)
    if executor is None:
        return InlinePool(capacity, metrics)
    try:
        board = CancelBoard(capacity) if kind == "processes" else None
    except BaseException:
        executor.shutdown(wait=False)
        raise
    return ExecutorPool(executor, workers, capacity, metrics, board, limit)
