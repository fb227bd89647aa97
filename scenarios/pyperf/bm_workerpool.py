"""pyperf benchmark of the Python worker pools: the time of one batch of N kernel tasks.

Run from the repository root with the project's venv, one pool kind and cost per invocation::

    .venv/bin/python scenarios/pyperf/bm_workerpool.py --kind processes --workers 2 \
        --kernel spin --rounds 50000 --tasks 20 --fast -o /tmp/p.json

``--kind`` is sync, threads or processes; ``--workers`` the pool size (ignored by sync);
``--kernel`` spin or hash; ``--rounds`` and ``--size`` the kernel's cost (``--size`` in bytes,
hash only); ``--tasks`` the batch size; ``--name`` the benchmark's name (by default one made of
the parameters, which are also in its metadata). Every other option is pyperf's (``--fast``,
``--rigorous``, ``-p``, ``-o``, ``--append`` ...): the output is plain pyperf JSON, throughput is
``tasks / mean``, and ``pyperf compare_to`` compares files whose benchmarks share names. On this
2-core machine a spin task of 5,000 rounds takes about 1 ms, 100,000 about 20 ms.

Each pyperf worker process creates its pool once and warms it up before any timing, so a value
is the time of ``run_tasks`` alone: the event loop, the executor hand-off (pickling for
processes) and the kernels. The task seeds differ per task and per loop, so no result is reused.
Each worker process also times the kernel alone, inline, and records it as the run's
``measured_task_ms`` metadata: the size a task really had where the tasks ran.

Two more modes, each in this one process, for the harness (bench/studies/pools.py,
bench/studies/instructions.py):

- ``--calibrate``: print ``{"ns_per_round": [...]}``, nanoseconds per round of ``--kernel``
  (``--size``) from several probes of about 50 ms, measured where it runs (pin it as the
  benchmark will be pinned);
- ``--inline-loops N``: run N batches untimed and exit, for counting instructions under callgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from concurrent.futures import Executor

import pyperf  # type: ignore[import-untyped]

from systems.workerpool.kernels import KERNELS, check, run_task
from systems.workerpool.pools import POOL_KINDS, PoolKind, Task, make_executor, run_tasks, warm_up

#: Time the kernel alone for at least this long, and at least PROBE_TASKS tasks, in each worker
#: process (a median of several: one task on a shared machine can be slowed down by anything).
PROBE_S, PROBE_TASKS = 0.05, 3
#: Calibration: probes of about this long, this many of them.
CALIBRATE_S, CALIBRATE_REPEATS = 0.05, 7


class Batch:
    """One configuration; its pool is created on the first ``time_loops`` of a worker process.

    Lazily, because pyperf runs this script in a manager process too, which times nothing.
    """

    def __init__(
        self, *, kind: PoolKind, workers: int, kernel: str, rounds: int, size: int, tasks: int
    ) -> None:
        check(kernel, rounds, size)
        self.kind = kind
        self.workers = workers
        self.kernel = kernel
        self.rounds = rounds
        self.size = size
        self.tasks = tasks
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: Executor | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._executor = make_executor(self.kind, self.workers)
            self._loop.run_until_complete(warm_up(self._executor, self.workers))
        return self._loop

    def close(self) -> None:
        """Shut the pool down before exit, where its atexit hook can hit pyperf's closed pipes."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
        if self._loop is not None:
            self._loop.close()

    def time_loops(self, loops: int) -> float:
        """Seconds taken by ``loops`` batches, run one after another (pyperf's time_func)."""
        loop = self._start()
        batches = [
            [
                Task(self.kernel, i * self.tasks + j, self.rounds, self.size)
                for j in range(self.tasks)
            ]
            for i in range(loops)
        ]
        start = time.perf_counter()
        for batch in batches:
            loop.run_until_complete(run_tasks(self._executor, batch))
        return time.perf_counter() - start

    def task_ms(self) -> float:
        """Milliseconds of one task's kernel, run inline here: the median of a short probe."""
        times: list[float] = []
        seed = 0
        while len(times) < PROBE_TASKS or sum(times) < PROBE_S:
            start = time.perf_counter()
            run_task(self.kernel, seed, self.rounds, self.size)
            times.append(time.perf_counter() - start)
            seed += 1
        return 1000 * statistics.median(times)


def calibrate(kernel: str, size: int) -> list[float]:
    """Nanoseconds per kernel round, one figure per probe of about CALIBRATE_S."""

    def run(rounds: int) -> float:
        start = time.perf_counter()
        run_task(kernel, 1, rounds, size)
        return time.perf_counter() - start

    rounds = 16
    while (elapsed := run(rounds)) < CALIBRATE_S / 4:  # grow to a measurable probe
        rounds *= 4
    rounds = max(1, int(rounds * CALIBRATE_S / max(elapsed, 1e-9)))
    return [1e9 * run(rounds) / rounds for _ in range(CALIBRATE_REPEATS)]


_OPTIONS = ("kind", "workers", "kernel", "rounds", "size", "tasks", "name")  # not the modes


def _pass_options(cmd: list[str], args: argparse.Namespace) -> None:
    # pyperf starts its worker processes with its own options only; hand ours on too.
    for option in _OPTIONS:
        if getattr(args, option) is not None:
            cmd.extend((f"--{option}", str(getattr(args, option))))


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=_pass_options)
    parser = runner.argparser
    parser.add_argument("--kind", choices=POOL_KINDS, default="sync")
    parser.add_argument("--workers", type=int, default=1, help="pool size (default 1)")
    parser.add_argument("--kernel", choices=KERNELS, default="spin")
    parser.add_argument("--rounds", type=int, default=1000, help="kernel rounds per task")
    parser.add_argument("--size", type=int, default=0, help="hash block size in bytes")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per batch (default 20)")
    parser.add_argument("--name", help="the benchmark's name (default: made of the parameters)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="print nanoseconds per round of --kernel (--size) as JSON, measured here, and exit",
    )
    parser.add_argument(
        "--inline-loops",
        type=int,
        metavar="N",
        help="run N batches in this process, untimed, and exit: for counting instructions "
        "(bench/studies/instructions.py runs this under valgrind's callgrind)",
    )
    args = runner.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.calibrate:
        check(args.kernel, 1, args.size)
        print(json.dumps({"ns_per_round": calibrate(args.kernel, args.size)}))
        return
    workers = 1 if args.kind == "sync" else args.workers
    batch = Batch(
        kind=args.kind,
        workers=workers,
        kernel=args.kernel,
        rounds=args.rounds,
        size=args.size,
        tasks=args.tasks,
    )
    size = f"-s{args.size}" if args.kernel == "hash" else ""
    name = args.name or (
        f"workerpool-{args.kind}-w{workers}-{args.kernel}-r{args.rounds}{size}-n{args.tasks}"
    )
    metadata: dict[str, str | int | float] = {
        "workerpool_kind": args.kind,
        "workerpool_workers": workers,
        "workerpool_kernel": args.kernel,
        "workerpool_rounds": args.rounds,
        "workerpool_size": args.size,
        "workerpool_tasks": args.tasks,
    }
    if args.inline_loops is not None:
        try:
            batch.time_loops(args.inline_loops)
        finally:
            batch.close()
        return
    if args.worker:  # the manager process times nothing
        metadata["measured_task_ms"] = batch.task_ms()
    try:
        runner.bench_time_func(name, batch.time_loops, metadata=metadata)
    finally:
        batch.close()


if __name__ == "__main__":
    main()
