"""The inference batcher's logic with a fake forward pass (no torch): how batches are formed by
each policy, the queue's bound, stopping, and a failing pass. Waits are events or tiny real
delays; nothing asserts how fast anything ran."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from systems.inference.batcher import Batcher, Limits, Overloaded, Pending, Policy, Stopped

T = TypeVar("T")


class FakeForward:
    """Answers ``out-<payload>`` for each payload and records each batch's payloads. A payload
    ``boom`` fails its batch; ``hold`` (a threading.Event) keeps the first pass waiting."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.hold = hold
        self.started = threading.Event()

    def __call__(self, payloads: Sequence[str]) -> tuple[list[str], float]:
        self.batches.append(list(payloads))
        self.started.set()
        if self.hold is not None:
            assert self.hold.wait(10), "the test never released the forward pass"
            self.hold = None
        if "boom" in payloads:
            raise RuntimeError("forward failed")
        return [f"out-{p}" for p in payloads], 0.5


def make(
    forward: FakeForward,
    policy: Policy = "dynamic",
    *,
    max_batch_size: int = 4,
    delay_s: float = 0.05,
    queue: int = 100,
) -> tuple[Batcher[str, str], list[tuple[int, float]]]:
    """A batcher over ``forward`` and the (samples, seconds) of each pass it reports."""
    passes: list[tuple[int, float]] = []
    limits = Limits(policy, max_batch_size, delay_s, queue)
    batcher = Batcher(
        forward, limits, ThreadPoolExecutor(max_workers=1), lambda n, s: passes.append((n, s))
    )
    return batcher, passes


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 30))


async def wait_thread(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10)


def submit(batcher: Batcher[str, str], name: str, samples: int = 1) -> Pending[str, str]:
    return batcher.submit(name, samples, time.perf_counter())


def test_dynamic_fills_batches_up_to_the_max_and_never_splits_a_request() -> None:
    forward = FakeForward()

    async def scenario() -> list[str]:
        batcher, passes = make(forward, max_batch_size=4)
        sizes = {"a": 2, "b": 1, "c": 1, "d": 3, "e": 2, "f": 1}
        pending = [submit(batcher, name, n) for name, n in sizes.items()]
        batcher.start()
        results = [await p.future for p in pending]
        await batcher.stop()
        assert passes == [(4, 0.5), (3, 0.5), (3, 0.5)]
        return results

    assert run(scenario) == [f"out-{x}" for x in "abcdef"]
    # d (3) does not fit after a, b, c (4) nor e (2) after d: each closes its batch.
    assert forward.batches == [["a", "b", "c"], ["d"], ["e", "f"]]


def test_dynamic_waits_for_arrivals_until_the_batch_is_full() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        # A delay far longer than the test: the batch closes because it is full.
        batcher, _ = make(forward, max_batch_size=2, delay_s=60.0)
        batcher.start()
        first = submit(batcher, "a")
        await asyncio.sleep(0.01)
        second = submit(batcher, "b")
        assert [await first.future, await second.future] == ["out-a", "out-b"]
        await batcher.stop()

    run(scenario)
    assert forward.batches == [["a", "b"]]


def test_dynamic_closes_at_the_deadline_with_what_it_has() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        batcher, passes = make(forward, max_batch_size=64, delay_s=0.01)
        batcher.start()
        assert await submit(batcher, "a", 3).future == "out-a"
        await batcher.stop()
        assert passes == [(3, 0.5)]

    run(scenario)
    assert forward.batches == [["a"]]


def test_a_delay_of_zero_takes_what_is_queued_without_waiting() -> None:
    hold = threading.Event()
    forward = FakeForward(hold)

    async def scenario() -> None:
        batcher, _ = make(forward, max_batch_size=8, delay_s=0.0)
        batcher.start()
        a = submit(batcher, "a")
        await wait_thread(forward.started)  # a is in its pass: b and c wait in the queue
        b, c = submit(batcher, "b"), submit(batcher, "c")
        assert batcher.depth == 2
        hold.set()
        await asyncio.gather(a.future, b.future, c.future)
        d = submit(batcher, "d")
        assert await d.future == "out-d"
        await batcher.stop()

    run(scenario)
    assert forward.batches == [["a"], ["b", "c"], ["d"]]


def test_unbatched_runs_one_request_a_pass() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        batcher, passes = make(forward, "unbatched", max_batch_size=64)
        pending = [submit(batcher, name, 2) for name in "abc"]
        batcher.start()
        await asyncio.gather(*(p.future for p in pending))
        await batcher.stop()
        assert passes == [(2, 0.5)] * 3

    run(scenario)
    assert forward.batches == [["a"], ["b"], ["c"]]


def test_the_queue_refuses_beyond_its_bound() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        batcher, _ = make(forward, queue=2)
        kept = [submit(batcher, "a"), submit(batcher, "b")]
        with pytest.raises(Overloaded):
            submit(batcher, "c")
        assert batcher.depth == 2
        batcher.start()
        assert [await p.future for p in kept] == ["out-a", "out-b"]
        submit(batcher, "d")  # room again
        await batcher.stop()

    run(scenario)


def test_a_request_larger_than_a_batch_is_refused() -> None:
    async def scenario() -> None:
        batcher, _ = make(FakeForward(), max_batch_size=4)
        with pytest.raises(ValueError, match="samples: 5, want 1 to 4"):
            submit(batcher, "a", 5)
        await batcher.stop()

    run(scenario)


def test_stop_answers_what_is_queued_and_in_a_pass_then_refuses() -> None:
    hold = threading.Event()
    forward = FakeForward(hold)

    async def scenario() -> None:
        batcher, _ = make(forward, "unbatched")
        batcher.start()
        pending = [submit(batcher, "a")]
        await wait_thread(forward.started)
        pending += [submit(batcher, "b"), submit(batcher, "c")]
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0)
        with pytest.raises(Stopped):
            submit(batcher, "d")
        hold.set()
        await stopping
        assert [p.future.result() for p in pending] == ["out-a", "out-b", "out-c"]
        with pytest.raises(RuntimeError, match="shutdown"):
            batcher.executor.submit(print)

    run(scenario)


def test_a_failing_pass_fails_its_requests_alone() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        batcher, passes = make(forward, "unbatched")
        pending = [submit(batcher, name) for name in ("a", "boom", "c")]
        batcher.start()
        results = await asyncio.gather(*(p.future for p in pending), return_exceptions=True)
        assert results[0] == "out-a"
        assert results[2] == "out-c"
        assert isinstance(results[1], RuntimeError)
        assert passes == [(1, 0.5), (1, 0.5)]  # a failed pass is not counted
        await batcher.stop()

    run(scenario)


def test_each_request_records_its_times_in_order() -> None:
    forward = FakeForward()

    async def scenario() -> None:
        batcher, _ = make(forward, delay_s=0.001)
        batcher.start()
        pending = [submit(batcher, name) for name in "ab"]
        assert await asyncio.gather(*(p.result() for p in pending)) == ["out-a", "out-b"]
        await batcher.stop()
        for p in pending:
            assert p.arrive <= p.enqueued <= p.taken <= p.closed <= p.done
            assert sum(p.parts) == pytest.approx(p.done - p.arrive)

    run(scenario)


@pytest.mark.parametrize(
    "limits",
    [("static", 4, 0.0, 1), ("dynamic", 0, 0.0, 1), ("dynamic", 4, -1.0, 1), ("dynamic", 4, 0, 0)],
)
def test_limits_out_of_range_are_refused(limits: tuple[Policy, int, float, int]) -> None:
    with pytest.raises(ValueError, match=r"policy|limits out of range"):
        Limits(*limits)
