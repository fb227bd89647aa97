"""The worker-pool service: command line, validation, admission, the three pools, shutdown.

    python -m systems.workerpool.service --pool sync|threads|processes \\
        [--workers N] [--queue N] [--timeout-ms N] [--listen 127.0.0.1:8080]

aiohttp's low-level ``web.Server`` with one handler that routes by path (every error is the
contract's JSON envelope), uvloop, one process (plus the worker processes of ``--pool
processes``). See ``README.md``, "The service contract".

Admission is one count, ``in_flight``: tasks admitted and unfinished, at most ``workers +
queue``; a request beyond it is answered 503 at once. Validation comes first, so a 400 never
takes a slot. The deadline (``--timeout-ms``) runs from the request's arrival at the handler. A
client that goes away cancels its handler (aiohttp's ``handler_cancellation``), which drops its
task exactly as the deadline does.

- ``threads`` and ``processes``: the task goes to the executor with ``submit``; the slot is
  released by the concurrent future's done-callback (on the loop thread), so it counts until
  the kernel has finished or the task was dropped before it started, whether or not anyone
  still waits for the answer. The handler awaits the future under ``asyncio.timeout``; at the
  deadline it cancels the future, which drops a task still in the executor's queue, and
  answers 504. A process pool hands up to ``workers + 1`` tasks to its worker processes ahead
  of time, where the future can no longer be cancelled: for those the handler sets the task's
  byte on a ``CancelBoard`` (shared memory), and the task function, which also checks the
  deadline itself, skips the task when it would start. A kernel already running finishes.
- ``sync``: the kernel runs inline on the event-loop thread. An admitted request yields once,
  then waits for its turn on a FIFO ``asyncio.Lock``, under the deadline; a task whose deadline
  has passed when its turn comes is dropped without running. With its turn it first lets the
  loop run a few more turns (``SETTLE_TURNS``), so that every request that arrived while the
  loop was blocked is read and admitted or refused before the next kernel blocks it again: a
  request needs up to three loop turns from being readable to being admitted. Arrivals are
  only read between two kernels, so for sync the deadline runs from the moment a request is
  read, after the kernel that was running when it arrived.

A kernel that finished after the deadline has its output discarded (504) in every pool; its run
time is still recorded in ``workerpool_task_duration_seconds``, measured where it ran.

On SIGTERM or SIGINT the service stops accepting, lets the requests in flight finish until 5 s
after the signal (no sync kernel starts later than that), then answers those still waiting
``503 overloaded`` with ``Retry-After: 1`` (as the Go service does), drops their tasks, waits
for the kernels running, shuts the pool down and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing.forkserver
import os
import re
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Final, NoReturn

import uvloop
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from systems.workerpool.kernels import KERNELS, MAX_SEED, hash_chain, spin
from systems.workerpool.metrics import Metrics
from systems.workerpool.pools import POOL_KINDS, PoolKind, Task, make_executor, warm_up

# The contract's limits on one request (tighter than kernels.check, which bounds the pools).
MAX_BODY: Final = 64 * 1024
MAX_ROUNDS: Final = 10_000_000
MIN_SIZE: Final = 8
MAX_SIZE: Final = 1024 * 1024
MAX_HASHED: Final = 1024 * 1024 * 1024  # rounds * size of one hash task
FIELDS: Final = ("kernel", "seed", "rounds", "size")

# Loop turns from the loop unblocking to a request's admission, measured with uvloop and
# aiohttp: 2 for a request on a kept-alive connection (read, then its handler runs), 3 on a new
# connection (accepted first). A sync kernel waits this many turns (about 1.5 µs each) first.
SETTLE_TURNS: Final = 4
MAX_WORKERS: Final = 256
SHUTDOWN_DRAIN_S: Final = 5.0
WARM_UP_S: Final = 60.0
JSON: Final = "application/json"
WORK: Final = "/work"


# --- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line."""

    host: str
    port: int
    pool: PoolKind
    workers: int
    queue: int
    timeout_ms: int


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag as one line on stderr (no usage block) and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return convert


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a host and a port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def default_workers() -> int:
    """The CPUs this process may run on (at most ``MAX_WORKERS``)."""
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = _OneLineParser(prog="workerpool", description=__doc__, allow_abbrev=False)
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080))
    p.add_argument("--pool", choices=POOL_KINDS, required=True)
    p.add_argument("--workers", type=_int_in(1, MAX_WORKERS), default=None)
    p.add_argument("--queue", type=_int_in(0, 100_000), default=64)
    p.add_argument("--timeout-ms", type=_int_in(1, 600_000), default=10_000)
    a = p.parse_args(argv)
    pool: PoolKind = a.pool
    if pool == "sync":
        if a.workers not in (None, 1):
            p.error(f"argument --workers: the sync pool runs one task at a time, not {a.workers}")
        workers = 1
    else:
        workers = default_workers() if a.workers is None else a.workers
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        pool=pool,
        workers=workers,
        queue=a.queue,
        timeout_ms=a.timeout_ms,
    )


# --- validation (pure: no I/O) ------------------------------------------------------------------


class InvalidArgument(ValueError):
    """A request refused with ``400 invalid_argument``; the message names the field and value."""


class _LongInt(str):
    """A JSON integer literal too long to be any field's value, kept as its text."""


@dataclass(frozen=True, slots=True)
class _Given:
    """One field as the client wrote it: a query value (str) or a parsed JSON value."""

    value: object
    json: bool
    repeated: bool = False  # a query parameter given more than once


_DIGITS = re.compile(r"[0-9]+")
_SHOWN = 64  # characters of a client's value quoted in a message


def _show(given: _Given) -> str:
    """The value for an error message: JSON as written, a query value quoted; cut if long."""
    value = given.value
    text = str(value) if isinstance(value, _LongInt) else json.dumps(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _parse_int(text: str) -> int | _LongInt:
    # int() refuses literals past 4300 digits; none that long is in range anyway.
    return int(text) if len(text) <= 32 else _LongInt(text)


def _refuse_unknown(names: Iterable[str], what: str) -> None:
    extra = sorted(name for name in names if name not in FIELDS)
    if extra:
        raise InvalidArgument(f"{json.dumps(extra[0])[:_SHOWN]}: unknown {what}")


def _integer(name: str, given: _Given, high: int) -> int:
    """``given`` as an integer in 0..high: in JSON a JSON integer, in a query digits only."""
    if given.repeated:
        raise InvalidArgument(f"{name}: given more than once")
    value = given.value
    if isinstance(value, _LongInt):
        number = high + 1
    elif given.json:
        if type(value) is not int:  # not bool, float or str
            raise InvalidArgument(f"{name}: {_show(given)} is not a JSON integer")
        number = value
    else:
        if not isinstance(value, str) or _DIGITS.fullmatch(value) is None:
            raise InvalidArgument(f"{name}: {_show(given)} is not a decimal integer")
        digits = value.lstrip("0")
        number = int(digits or "0") if len(digits) <= 32 else high + 1
    if not 0 <= number <= high:
        raise InvalidArgument(f"{name}: {_show(given)} is outside 0..{high}")
    return number


def _validate(fields: Mapping[str, _Given]) -> Task:
    """Check the fields in the contract's order, kernel, seed, rounds, size."""
    given = fields.get("kernel")
    if given is None:
        raise InvalidArgument("kernel: required (spin or hash)")
    if given.repeated:
        raise InvalidArgument("kernel: given more than once")
    kernel = given.value
    if type(kernel) is not str:
        raise InvalidArgument(f"kernel: {_show(given)} is not a string")
    if kernel not in KERNELS:
        raise InvalidArgument(f"kernel: {_show(given)} is neither spin nor hash")

    given = fields.get("seed")
    seed = 0 if given is None else _integer("seed", given, MAX_SEED)

    given = fields.get("rounds")
    if given is None:
        raise InvalidArgument("rounds: required")
    rounds = _integer("rounds", given, MAX_ROUNDS)

    given = fields.get("size")
    if kernel == "spin":  # ignored by spin, but it must still be an integer
        size = 0 if given is None else _integer("size", given, MAX_SEED)
        return Task(kernel, seed, rounds, size)
    if given is None:
        raise InvalidArgument("size: required for hash")
    size = _integer("size", given, MAX_SIZE)
    if size < MIN_SIZE or size % 8:
        raise InvalidArgument(
            f"size: {_show(given)} is not a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}"
        )
    if rounds * size > MAX_HASHED:
        raise InvalidArgument(
            f"size: {_show(given)} with {rounds} rounds hashes more than {MAX_HASHED} bytes"
        )
    return Task(kernel, seed, rounds, size)


def parse_query(pairs: Iterable[tuple[str, str]]) -> Task:
    """A GET's task from its decoded query parameters, or InvalidArgument naming the field.

    Unknown parameters are refused first (the first by name), then the fields are checked in
    the contract's order; numbers must be decimal digits only.
    """
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    _refuse_unknown(values, "query parameter")
    return _validate(
        {name: _Given(v[0], json=False, repeated=len(v) > 1) for name, v in values.items()}
    )


def parse_body(body: bytes) -> Task:
    """A POST's task from its body, a JSON object of at most 64 KiB, or InvalidArgument.

    Unknown fields are refused first (the first by name), then the fields are checked in the
    contract's order; numbers must be JSON integers (not strings, floats or booleans).
    """
    if len(body) > MAX_BODY:
        raise InvalidArgument(f"body: larger than {MAX_BODY} bytes")
    try:
        value = json.loads(body, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"body: not JSON: {str(exc)[:_SHOWN]}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"body: not a JSON object but {_json_kind(value)}")
    _refuse_unknown(value, "field")
    return _validate({name: _Given(v, json=True) for name, v in value.items()})


# --- running tasks ------------------------------------------------------------------------------


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

    async def close(self) -> None:
        """Nothing to shut down."""


class ExecutorPool:
    """``threads`` and ``processes``: tasks submitted to a concurrent.futures executor.

    ``board`` is given for a process pool (see ``CancelBoard``); a thread pool's queued futures
    can always be cancelled.
    """

    def __init__(
        self, executor: Executor, capacity: int, metrics: Metrics, board: CancelBoard | None
    ) -> None:
        self.in_flight = 0
        self._executor = executor
        self._capacity = capacity
        self._metrics = metrics
        self._board = board

    async def run(self, task: Task, deadline: float) -> str:
        """The task's output; raises Overloaded, or TimeoutError when the deadline passed first.

        Cancelled (the client went away) or timed out, it cancels the task, which drops it if
        it has not started; a running kernel finishes and releases its slot then.
        """
        if self.in_flight >= self._capacity:
            raise Overloaded
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


# --- HTTP -----------------------------------------------------------------------------------------


def error_body(code: str, message: str) -> bytes:
    """The contract's error envelope."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()


def answer_body(task: Task, output: str) -> bytes:
    """The echo of the task's fields, defaults filled in, with the kernel's output."""
    kernel, seed, rounds, size = task
    fields = {"kernel": kernel, "seed": seed, "rounds": rounds, "size": size, "output": output}
    return json.dumps(fields, separators=(",", ":")).encode()


_HEALTHY = b'{"status":"ok"}'
_INTERNAL = error_body("internal", "internal error: the task failed in the pool")
_SHUTTING_DOWN = error_body("overloaded", "the service is shutting down, retry elsewhere")


def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


def _not_allowed(method: str, allow: str) -> web.Response:
    message = f"method {json.dumps(method)[:_SHOWN]} not allowed: only {allow}"
    return _error(405, error_body("method_not_allowed", message), {"Allow": allow})


async def read_body(request: web.BaseRequest) -> bytes:
    """The request's body, or InvalidArgument as soon as it passes ``MAX_BODY`` bytes."""
    too_large = InvalidArgument(f"body: larger than {MAX_BODY} bytes")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise too_large
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    body = bytearray()
    try:
        while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
            body += chunk
            if len(body) > MAX_BODY:
                raise too_large
    except HttpProcessingError as exc:  # e.g. broken chunked encoding
        raise InvalidArgument(f"body: {exc.message}"[:_SHOWN]) from None
    return bytes(body)


class Handler:
    """Routes every request; counts /work answers and their durations."""

    def __init__(self, pool: Pool, metrics: Metrics, config: Config) -> None:
        self._pool = pool
        self._metrics = metrics
        self._timeout = config.timeout_ms / 1000
        self._working: set[asyncio.Task[Any]] = set()
        self._stopping = False
        capacity = config.workers + config.queue
        self._overloaded = error_body(
            "overloaded", f"{capacity} tasks (workers + queue) already admitted, retry later"
        )
        self._deadline = error_body(
            "deadline_exceeded", f"the task did not finish within {config.timeout_ms} ms"
        )

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == WORK:
            start = time.perf_counter()
            current = asyncio.current_task()
            assert current is not None
            self._working.add(current)
            try:
                response = await self._work(request)
            finally:
                self._working.discard(current)
            self._metrics.count_request(response.status, time.perf_counter() - start)
            return response
        if path == "/healthz" or path == "/metrics":
            if request.method != "GET":
                return _not_allowed(request.method, "GET")
            if path == "/healthz":
                return web.Response(body=_HEALTHY, content_type=JSON)
            body = generate_latest(self._metrics.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
        return _error(404, error_body("not_found", f"no such path: {json.dumps(path)[:_SHOWN]}"))

    async def _work(self, request: web.BaseRequest) -> web.Response:
        method = request.method
        if method != "GET" and method != "POST":
            return _not_allowed(method, "GET, POST")
        deadline = time.monotonic() + self._timeout
        try:
            if method == "GET":
                task = parse_query(request.query.items())
            else:
                if request.query_string:
                    raise InvalidArgument("query: a POST takes its fields from the body")
                async with asyncio.timeout(self._timeout):
                    body = await read_body(request)
                task = parse_body(body)
        except InvalidArgument as exc:
            return _error(400, error_body("invalid_argument", str(exc)))
        except TimeoutError:  # the body did not arrive within the deadline
            return _error(504, self._deadline)
        try:
            output = await self._pool.run(task, deadline)
        except Overloaded:
            return _error(503, self._overloaded, {"Retry-After": "1"})
        except TimeoutError:
            return _error(504, self._deadline)
        except ShuttingDown:
            return _error(503, _SHUTTING_DOWN, {"Retry-After": "1"})
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._stopping or current is None:
                raise  # the client went away
            current.uncancel()  # our own cancel (see stop_waiting): answer it
            return _error(503, _SHUTTING_DOWN, {"Retry-After": "1"})
        except Exception as exc:  # e.g. a broken process pool: not the client's fault
            print(f"workerpool: task failed: {exc!r}", file=sys.stderr, flush=True)
            return _error(500, _INTERNAL)
        return web.Response(body=answer_body(task, output), content_type=JSON)

    def drain_by(self, when: float) -> None:
        """Start no sync kernel after ``when`` (``time.monotonic()``); see ``stop_waiting``."""
        if isinstance(self._pool, InlinePool):
            self._pool.stop_at = when

    def stop_waiting(self) -> None:
        """Answer 503 to every /work request still waiting (as Go does at shutdown).

        Their tasks are dropped if not started; a running kernel finishes in its worker.
        """
        self._stopping = True
        for task in list(self._working):
            task.cancel()


# --- start-up and shutdown ----------------------------------------------------------------------


def c_parser_problem() -> str | None:
    """Why aiohttp would run its pure-Python HTTP request parser (about half the speed), if so."""
    from aiohttp import http_parser, web_protocol

    request_c = getattr(http_parser, "HttpRequestParserC", None)
    if request_c is None or getattr(web_protocol, "HttpRequestParser", None) is not request_c:
        return "aiohttp's C HTTP request parser is not in use (AIOHTTP_NO_EXTENSIONS set?)"
    return None


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _start_forkserver_deaf() -> None:
    """Start the forkserver with SIGINT and SIGTERM ignored, which the workers it forks inherit.

    A Ctrl-C (or a signal to the whole process group) then stops the service, which stops its
    pool in order, instead of killing the workers under the tasks in flight. Call it before
    the loop installs its own handlers: exec resets handled signals, but keeps ignored ones.
    """
    deaf = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in deaf}
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _StopSignal:
    """Set by the first SIGTERM or SIGINT, remembering when: the drain ends 5 s after it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.at: float | None = None

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        self.event.set()


async def _drain(runner: web.ServerRunner, handler: Handler, until: float) -> None:
    """Stop accepting and let requests in flight finish; at ``until`` answer those left 503.

    Connections and requests that arrived before the signal are accepted and read first (a few
    loop turns each side of closing the listener), so that they are not refused or closed as
    idle: this matters for sync, whose loop may just have unblocked with a backlog.
    """
    handler.drain_by(until)
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
    for site in list(runner.sites):
        await site.stop()
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
    cleanup = asyncio.create_task(runner.cleanup())
    done, _ = await asyncio.wait({cleanup}, timeout=max(0.0, until - time.monotonic()))
    if not done:
        handler.stop_waiting()
    await cleanup


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, drain (at most 5 s), shut the pool down and return.

    Every worker of the pool is started (for processes: forked, the kernels imported) before
    the ``listening on ADDR`` line.
    """
    loop = asyncio.get_running_loop()
    if config.pool == "processes":
        _start_forkserver_deaf()
    stop = _StopSignal()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _raise_fd_limit(config.workers + config.queue + 1024)
    metrics = Metrics(config.workers)
    capacity = config.workers + config.queue
    executor = make_executor(config.pool, config.workers)
    pool: Pool
    if executor is None:
        pool = InlinePool(capacity, metrics)
    else:
        try:
            board = CancelBoard(capacity) if config.pool == "processes" else None
        except BaseException:
            executor.shutdown(wait=False)
            raise
        pool = ExecutorPool(executor, capacity, metrics, board)
    try:
        metrics.watch_in_flight(lambda: pool.in_flight)
        handler = Handler(pool, metrics, config)
        server = web.Server(handler, access_log=None, handler_cancellation=True)
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_DRAIN_S)
        await runner.setup()
        try:
            # Bind first (a taken address fails at once), then start the workers.
            await web.TCPSite(runner, config.host or None, config.port, backlog=1024).start()
            if executor is not None:
                async with asyncio.timeout(WARM_UP_S):
                    await warm_up(executor, config.workers)
            host, port = runner.addresses[0][:2]
            host = f"[{host}]" if ":" in host else host
            print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
            await stop.event.wait()
        finally:
            await _drain(runner, handler, (stop.at or time.monotonic()) + SHUTDOWN_DRAIN_S)
    finally:
        await pool.close()  # waits for running kernels (at most ~2 s each by the limits)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    problem = c_parser_problem()
    if problem is not None:
        print(f"workerpool: refusing to start: {problem}", file=sys.stderr)
        return 1
    try:
        uvloop.run(serve(config))
    except OSError as exc:  # e.g. the listen address is taken
        print(f"workerpool: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
