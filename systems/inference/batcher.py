"""The batcher: requests queued on the event loop, formed into batches, computed on one thread.

Pure asyncio (no HTTP, no torch): a request is a payload of some samples, and ``forward`` takes
a batch's payloads and returns one result per payload and the model's own seconds. The server
gives it ``accel.Engine``; the unit tests give it fakes.

- ``submit`` queues a request at once, or refuses it (``Overloaded``) when ``queue`` requests
  are already waiting, or (``Stopped``) once ``stop`` has begun.
- One task forms a batch only when the forward thread is free (form, compute, form, …).
  ``unbatched``: a batch is one request. ``dynamic``: the oldest request opens the batch and
  sets its deadline, its arrival plus ``max_queue_delay`` (less a timer tick, so that no wait
  overshoots it); requests join in order (those
  queued at once, later ones as they arrive, until the deadline) while the batch's samples plus
  the next request's stay within ``max_batch_size``; it closes when the next does not fit, or at
  the deadline. A request is never split. A deadline already past (or a delay of 0, Triton's
  default) takes what is queued and fits, without waiting.
- The forward pass runs on the executor given (one thread; the batcher owns and shuts it down),
  off the loop; its results come back to each request's future on the loop. An exception fails
  that batch's requests alone, and the batcher goes on.

Each request records four ``time.perf_counter`` times: ``arrive`` (given by the caller: when
its handler started), ``taken`` (into a forming batch), ``closed`` (its batch handed to the
thread) and ``done`` (its result back on the loop, with the coroutine awaiting
``Pending.result``: a batch's requests resume one after another, and each one's wait for those
before it is part of its time, not left outside every part). ``on_pass(samples, seconds)`` is
called on the loop after each successful pass.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

Policy = Literal["unbatched", "dynamic"]
POLICIES: Final = ("unbatched", "dynamic")

#: The event loop's timer resolution: uvloop (libuv) fires timers on whole milliseconds, so a
#: wait may end up to this much late (measured: a 1.9 ms wait took 2.2 ms). The batcher stops
#: waiting this much before the oldest request's delay is out, so that ``max_queue_delay`` is an
#: upper bound, as Triton's is: a delay of at most one tick then takes only what is queued.
TIMER_RESOLUTION_S: Final = 0.001

P = TypeVar("P")
R = TypeVar("R")


class Overloaded(Exception):
    """The queue is full: the request is refused, not queued."""


class Stopped(Exception):
    """The batcher is stopping: no request is queued any more."""


@dataclass(eq=False, slots=True)
class Pending(Generic[P, R]):
    """A request in the batcher: its payload, samples, result to be, and its times."""

    payload: P
    samples: int
    arrive: float
    enqueued: float
    future: asyncio.Future[R]
    taken: float = 0.0
    closed: float = 0.0
    done: float = 0.0

    async def result(self) -> R:
        """The result (or the forward pass's exception), once back with this request's own
        coroutine on the loop: ``done`` is then, after the requests of the same batch that
        resumed before it."""
        try:
            return await self.future
        finally:
            self.done = time.perf_counter()

    @property
    def parts(self) -> tuple[float, float, float]:
        """Seconds queued (from arrival), forming the batch, and computing (hand-off, forward
        pass and split); they add up to ``done - arrive``."""
        return self.taken - self.arrive, self.closed - self.taken, self.done - self.closed


@dataclass(frozen=True, slots=True)
class Limits:
    """How batches are formed (see the module's docstring)."""

    policy: Policy
    max_batch_size: int
    max_queue_delay_s: float
    queue: int

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy: {self.policy!r} is not one of {', '.join(POLICIES)}")
        if self.max_batch_size < 1 or self.queue < 1 or self.max_queue_delay_s < 0:
            raise ValueError(f"limits out of range: {self}")


Forward = Callable[[Sequence[P]], tuple[Sequence[R], float]]


class Batcher(Generic[P, R]):
    """Queues requests and runs them, batched by ``limits``, through ``forward`` on
    ``executor`` (which it shuts down). ``start`` it on the loop; ``stop`` answers everything
    queued, then returns."""

    def __init__(
        self,
        forward: Forward[P, R],
        limits: Limits,
        executor: Executor,
        on_pass: Callable[[int, float], None] | None = None,
    ) -> None:
        self.forward = forward
        self.limits = limits
        self.executor = executor
        self.on_pass = on_pass
        self._queue: collections.deque[Pending[P, R]] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def depth(self) -> int:
        """Requests waiting to be taken into a batch."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether ``submit`` would refuse for want of room now (``queue`` requests wait)."""
        return len(self._queue) >= self.limits.queue

    def start(self) -> None:
        """Start forming batches (call on the loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    def submit(self, payload: P, samples: int, arrive: float) -> Pending[P, R]:
        """Queue a request of ``samples`` samples that arrived at ``arrive``; await its
        ``future`` for the result (or the forward pass's exception)."""
        if self._stopping:
            raise Stopped
        if len(self._queue) >= self.limits.queue:
            raise Overloaded
        if self.limits.policy == "dynamic" and not 1 <= samples <= self.limits.max_batch_size:
            raise ValueError(f"samples: {samples}, want 1 to {self.limits.max_batch_size}")
        loop = asyncio.get_running_loop()
        pending: Pending[P, R] = Pending(
            payload, samples, arrive, time.perf_counter(), loop.create_future()
        )
        self._queue.append(pending)
        self._arrived.set()
        return pending

    async def stop(self) -> None:
        """Refuse new requests, answer those queued or in a pass, then shut the executor down."""
        self._stopping = True
        self._arrived.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            await asyncio.to_thread(self.executor.shutdown, wait=True)

    async def _run(self) -> None:
        try:
            while True:
                while not self._queue:
                    if self._stopping:
                        return
                    self._arrived.clear()
                    await self._arrived.wait()
                batch = await self._form()
                await self._compute(batch)
        finally:  # a bug here, or a cancelled task: no request waits for ever
            while self._queue:
                pending = self._queue.popleft()
                if not pending.future.done():
                    pending.future.set_exception(Stopped())

    async def _form(self) -> list[Pending[P, R]]:
        """The next batch, taken from the queue (not empty) by the policy."""
        queue = self._queue
        first = queue.popleft()
        first.taken = time.perf_counter()
        batch = [first]
        if self.limits.policy == "unbatched":
            return batch
        samples, most = first.samples, self.limits.max_batch_size
        loop = asyncio.get_running_loop()
        # The deadline on the loop's clock, from the oldest request's arrival: the time it took
        # to read and decode counts against the delay, as a queue delay counts from arrival.
        deadline = loop.time() + (first.arrive + self.limits.max_queue_delay_s - first.taken)
        # Aimed a timer tick early: a timer may fire a tick late, and the delay is a bound.
        deadline -= TIMER_RESOLUTION_S
        while samples < most:
            if queue:
                if samples + queue[0].samples > most:
                    break
                nxt = queue.popleft()
                nxt.taken = time.perf_counter()
                batch.append(nxt)
                samples += nxt.samples
                continue
            if self._stopping or loop.time() >= deadline:
                break
            self._arrived.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()
            except TimeoutError:
                break
        return batch

    async def _compute(self, batch: list[Pending[P, R]]) -> None:
        """Run ``batch`` through ``forward`` on the executor; answer each request's future."""
        loop = asyncio.get_running_loop()
        closed = time.perf_counter()
        for pending in batch:
            pending.closed = closed
        try:
            results, seconds = await loop.run_in_executor(
                self.executor, self.forward, [p.payload for p in batch]
            )
            if len(results) != len(batch):
                raise RuntimeError(f"forward: {len(results)} results for {len(batch)} requests")
        except Exception as exc:
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        if self.on_pass is not None:
            self.on_pass(sum(p.samples for p in batch), seconds)
