"""pyperf benchmark of the Python worker pools: the time of one batch of N kernel tasks.

Run from the repository root with the project's venv, one pool kind and cost per invocation::

    .venv/bin/python scenarios/pyperf/bm_workerpool.py --kind processes --workers 2 \
        --kernel spin --rounds 50000 --tasks 20 --fast -o /tmp/p.json

``--kind`` is sync, threads or processes; ``--workers`` the pool size (ignored by sync);
``--kernel`` spin or hash; ``--rounds`` and ``--size`` the kernel's cost (``--size`` in bytes,
hash only); ``--tasks`` the batch size. Every other option is pyperf's (``--fast``, ``--rigorous``,
``-p``, ``-o``, ...). The output is plain pyperf JSON, one benchmark named after its parameters,
which are also in its metadata; throughput is ``tasks / mean``, and ``pyperf compare_to`` compares
files. On this 2-core machine a spin task of 5,000 rounds takes about 1 ms, 100,000 about 20 ms.

Each pyperf worker process creates its pool once and warms it up before any timing, so a value
is the time of ``run_tasks`` alone: the event loop, the executor hand-off (pickling for
processes) and the kernels. The task seeds differ per task and per loop, so no result is reused.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import Executor

import pyperf  # type: ignore[import-untyped]

from systems.workerpool.kernels import KERNELS, check
from systems.workerpool.pools import POOL_KINDS, PoolKind, Task, make_executor, run_tasks, warm_up


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


_OPTIONS = ("kind", "workers", "kernel", "rounds", "size", "tasks")  # not inline_loops


def _pass_options(cmd: list[str], args: argparse.Namespace) -> None:
    # pyperf starts its worker processes with its own options only; hand ours on too.
    for option in _OPTIONS:
        cmd.extend((f"--{option}", str(getattr(args, option))))


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=_pass_options)
    parser = runner.argparser
    parser.add_argument("--kind", choices=POOL_KINDS, required=True)
    parser.add_argument("--workers", type=int, default=1, help="pool size (default 1)")
    parser.add_argument("--kernel", choices=KERNELS, default="spin")
    parser.add_argument("--rounds", type=int, required=True, help="kernel rounds per task")
    parser.add_argument("--size", type=int, default=0, help="hash block size in bytes")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per batch (default 20)")
    parser.add_argument(
        "--inline-loops",
        type=int,
        metavar="N",
        help="run N batches in this process, untimed, and exit: for counting instructions "
        "(bench/instructions.py runs this under valgrind's callgrind)",
    )
    args = runner.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
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
    name = f"workerpool-{args.kind}-w{workers}-{args.kernel}-r{args.rounds}{size}-n{args.tasks}"
    metadata = {
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
    try:
        runner.bench_time_func(name, batch.time_loops, metadata=metadata)
    finally:
        batch.close()


if __name__ == "__main__":
    main()
