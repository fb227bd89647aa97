"""Scatter/gather: the backend calls of one catalog request, hedging, and the merged answer.

One catalog request is an ``asyncio.TaskGroup`` with one task per backend under
``asyncio.timeout(deadline)``; each attempt runs under ``asyncio.timeout(call_timeout)``. A
backend task never raises (a raise would make the TaskGroup cancel its siblings): it returns an
``Outcome``, the part's JSON text on success or a ``Failure``. When the deadline passes the
TaskGroup cancels the unfinished tasks (an aiohttp request cancelled mid-flight closes its
connection, so the backend sees the caller go away) and those parts are missing as ``timeout``.

Attempt outcomes (``fanout_backend_calls_total``) follow the Go implementation: an attempt cut
off by its call timeout or by the request deadline is ``timeout``; one cancelled for any other
reason (the losing side of a hedge, a forced shutdown) is ``cancelled``.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Sequence
from typing import NoReturn

import aiohttp
from yarl import URL

from systems.fanout.metrics import Metrics

BACKENDS = (
    "pricing",
    "inventory",
    "reviews",
    "shipping",
    "recommendations",
    "promotions",
    "ratings",
    "availability",
)


class Failure(enum.Enum):
    """Why a part is missing."""

    TIMEOUT = "timeout"
    ERROR = "error"


# The part's JSON text (a JSON object, verbatim from the backend) or why it is missing.
Outcome = str | Failure

# Indexes into Metrics.attempts[b], in the order of metrics.OUTCOMES.
_OK, _ERROR, _TIMEOUT, _CANCELLED = range(4)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


# Strict JSON like Go's decoder: NaN/Infinity are refused (they could not be passed on verbatim).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_part(status: int, body: bytes) -> str | None:
    """The part's JSON text when the answer is a 200 whose body is a JSON object, else None."""
    if status != 200:
        return None
    try:
        text = body.decode()
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return text.strip() if isinstance(value, dict) else None


class BodyBuilder:
    """Builds the catalog answer for a fixed list of backends from their outcomes.

    Parts are inserted as the backends' own JSON text (verbatim, not re-encoded); ``missing`` is
    sorted by backend name; ``degraded`` is true exactly when something is missing. ``item_id``
    must already match the contract's pattern, which needs no JSON escaping.
    """

    def __init__(self, backends: Sequence[str]) -> None:
        self._part_keys = [json.dumps(b) + ":" for b in backends]
        self._by_name = sorted(range(len(backends)), key=lambda i: backends[i])
        self._missing = [
            {
                f: json.dumps({"backend": b, "reason": f.value}, separators=(",", ":"))
                for f in Failure
            }
            for b in backends
        ]

    def build(self, item_id: str, outcomes: Sequence[Outcome]) -> bytes:
        parts = [
            key + outcome
            for key, outcome in zip(self._part_keys, outcomes, strict=True)
            if isinstance(outcome, str)
        ]
        missing = [
            self._missing[i][outcome]
            for i in self._by_name
            if not isinstance(outcome := outcomes[i], str)
        ]
        return (
            f'{{"item_id":"{item_id}","parts":{{{",".join(parts)}}},'
            f'"missing":[{",".join(missing)}],"degraded":{"true" if missing else "false"}}}'
        ).encode()


def backend_paths(replica: URL, backends: Sequence[str]) -> list[str]:
    """Encoded path prefixes ``{replica path}/backend/{b}/`` of one replica, one per backend."""
    base = replica.raw_path.rstrip("/")
    return [f"{base}/backend/{b}/" for b in backends]


class Fanout:
    """Calls the first K backends for an item through one pooled client session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        replicas: Sequence[URL],
        backends: Sequence[str],
        *,
        call_timeout: float,
        deadline: float,
        hedge_delay: float,
        metrics: Metrics,
    ) -> None:
        if hedge_delay > 0 and len(replicas) < 2:
            raise ValueError("hedging needs at least two replicas")
        self._session = session
        self._origins = [r.origin() for r in replicas]
        self._paths = [backend_paths(r, backends) for r in replicas]
        self._replicas = len(replicas)
        self._backends = len(backends)
        self._rr = [0] * len(backends)
        self._call_timeout = call_timeout
        self._deadline = deadline
        self._hedge_delay = hedge_delay
        self._metrics = metrics
        self._body = BodyBuilder(backends)

    async def catalog(self, item_id: str) -> bytes:
        """The catalog answer for ``item_id``: every part that came back by the deadline."""
        call = self._hedged if self._hedge_delay > 0 else self._attempt
        tasks: list[asyncio.Task[Outcome]] = []
        deadline = asyncio.timeout(self._deadline)
        try:
            async with deadline, asyncio.TaskGroup() as group:
                for b in range(self._backends):
                    r = self._next_primary(b)
                    tasks.append(group.create_task(call(b, r, item_id, deadline)))
        except TimeoutError:
            pass  # the deadline: unfinished tasks were cancelled, their parts are timeouts
        outcomes: list[Outcome] = []
        for b, task in enumerate(tasks):
            finished = task.done() and not task.cancelled()
            outcome = task.result() if finished else Failure.TIMEOUT
            if outcome is Failure.TIMEOUT:
                self._metrics.timeouts[b].inc()
            outcomes.append(outcome)
        return self._body.build(item_id, outcomes)

    def _next_primary(self, b: int) -> int:
        r = self._rr[b]
        self._rr[b] = r + 1 if r + 1 < self._replicas else 0
        return r

    async def _attempt(self, b: int, r: int, item_id: str, deadline: asyncio.Timeout) -> Outcome:
        """One GET to replica ``r`` for backend ``b``; never raises except CancelledError."""
        counters = self._metrics.attempts[b]
        url = self._origins[r].with_path(self._paths[r][b] + item_id, encoded=True)
        try:
            async with (
                asyncio.timeout(self._call_timeout),
                self._session.get(url) as response,
            ):
                body = await response.read()
                status = response.status
        except TimeoutError:
            counters[_TIMEOUT].inc()
            return Failure.TIMEOUT
        except asyncio.CancelledError:
            counters[_TIMEOUT if deadline.expired() else _CANCELLED].inc()
            raise
        except Exception:  # connection failures and anything else aiohttp raises
            counters[_ERROR].inc()
            return Failure.ERROR
        part = parse_part(status, body)
        if part is None:
            counters[_ERROR].inc()
            return Failure.ERROR
        counters[_OK].inc()
        return part

    async def _hedged(self, b: int, r: int, item_id: str, deadline: asyncio.Timeout) -> Outcome:
        """The primary attempt, plus one to the next replica if it is still running after the
        hedge delay; the first success wins and the other attempt is cancelled."""
        primary = asyncio.create_task(self._attempt(b, r, item_id, deadline))
        running: set[asyncio.Task[Outcome]] = {primary}
        try:
            done, running = await asyncio.wait(running, timeout=self._hedge_delay)
            if done:  # finished (or failed) before the hedge: a hedge is not a retry
                return primary.result()
            self._metrics.hedges[b].inc()
            hedge_replica = r + 1 if r + 1 < self._replicas else 0
            hedge = self._attempt(b, hedge_replica, item_id, deadline)
            running.add(asyncio.create_task(hedge))
            outcome: Outcome = Failure.TIMEOUT
            while running:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    outcome = task.result()
                    if isinstance(outcome, str):
                        return outcome
            return outcome  # both failed: the reason of the one that failed last
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
