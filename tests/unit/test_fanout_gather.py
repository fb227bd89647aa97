"""Scatter/gather scheduling of the Python fan-out service against an in-process fake session:
round-robin, call timeout, deadline, hedging and cancellation, without sockets."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast

import aiohttp
from yarl import URL

from systems.fanout.gather import BACKENDS, Fanout
from systems.fanout.metrics import Metrics


@dataclass
class Replica:
    """How a fake replica answers: after ``delay`` seconds, ``status`` (or raise ``fail``)."""

    delay: float = 0.0
    status: int = 200
    fail: bool = False


@dataclass
class FakeSession:
    """Stands in for aiohttp.ClientSession.get; logs (port, path) per call and cancellations."""

    replicas: dict[int, Replica]
    calls: list[tuple[int, str]] = field(default_factory=list)
    cancelled: list[tuple[int, str]] = field(default_factory=list)

    def get(self, url: URL) -> _FakeCall:
        assert url.port is not None
        self.calls.append((url.port, url.path))
        return _FakeCall(self, url.port, url.path)


class _FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = body

    async def read(self) -> bytes:
        return self._body


class _FakeCall:
    def __init__(self, session: FakeSession, port: int, path: str) -> None:
        self._session, self._port, self._path = session, port, path

    async def __aenter__(self) -> _FakeResponse:
        replica = self._session.replicas[self._port]
        try:
            await asyncio.sleep(replica.delay)
        except asyncio.CancelledError:
            self._session.cancelled.append((self._port, self._path))
            raise
        if replica.fail:
            raise aiohttp.ClientConnectionError("connection refused")
        _, _, name, item = self._path.split("/")
        body = json.dumps({"backend": name, "item_id": item, "value": self._port})
        return _FakeResponse(replica.status, body.encode())

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def _fanout(
    session: FakeSession,
    k: int = 1,
    *,
    call_timeout: float = 1.0,
    deadline: float = 1.0,
    hedge_delay: float = 0.0,
) -> tuple[Fanout, Metrics]:
    metrics = Metrics(BACKENDS[:k])
    fanout = Fanout(
        cast(aiohttp.ClientSession, session),
        [URL(f"http://127.0.0.1:{port}") for port in session.replicas],
        BACKENDS[:k],
        call_timeout=call_timeout,
        deadline=deadline,
        hedge_delay=hedge_delay,
        metrics=metrics,
    )
    return fanout, metrics


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _catalog(fanout: Fanout, item: str = "sku-1") -> tuple[dict[str, object], float]:
    start = time.perf_counter()
    body = asyncio.run(fanout.catalog(item))
    return json.loads(body), time.perf_counter() - start


def test_all_parts_and_round_robin_primary_per_backend() -> None:
    session = FakeSession({1: Replica(), 2: Replica()})
    fanout, metrics = _fanout(session, k=2)
    for _ in range(3):
        body, _ = _catalog(fanout)
        assert body["degraded"] is False
        assert body["missing"] == []
    ports = {b: [p for p, path in session.calls if f"/{b}/" in path] for b in BACKENDS[:2]}
    assert ports == {"pricing": [1, 2, 1], "inventory": [1, 2, 1]}
    assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="ok") == 3


def test_call_timeout_and_error_are_missing_with_their_reason() -> None:
    session = FakeSession({1: Replica(delay=0.5)})
    fanout, metrics = _fanout(session, call_timeout=0.02)
    body, elapsed = _catalog(fanout)
    assert body["missing"] == [{"backend": "pricing", "reason": "timeout"}]
    assert elapsed < 0.3
    assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="timeout") == 1
    assert _sample(metrics, "fanout_timeouts_total", backend="pricing") == 1

    for replica in (Replica(fail=True), Replica(status=500)):
        fanout, metrics = _fanout(FakeSession({1: replica}))
        body, _ = _catalog(fanout)
        assert body["missing"] == [{"backend": "pricing", "reason": "error"}]
        assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="error")


def test_deadline_cancels_stragglers_and_answers_at_once() -> None:
    session = FakeSession({1: Replica(delay=2.0)})
    fanout, metrics = _fanout(session, k=3, call_timeout=5.0, deadline=0.05)
    body, elapsed = _catalog(fanout)
    assert elapsed < 0.5
    assert body["parts"] == {}
    assert {m["reason"] for m in cast(list[dict[str, str]], body["missing"])} == {"timeout"}
    assert len(session.cancelled) == 3
    for b in BACKENDS[:3]:
        # cut off by the deadline: a timeout, as in the Go implementation
        assert _sample(metrics, "fanout_backend_calls_total", backend=b, outcome="timeout") == 1
        assert _sample(metrics, "fanout_backend_calls_total", backend=b, outcome="cancelled") == 0
        assert _sample(metrics, "fanout_timeouts_total", backend=b) == 1


def test_hedge_to_next_replica_wins_and_the_loser_is_cancelled() -> None:
    session = FakeSession({1: Replica(delay=2.0), 2: Replica()})
    fanout, metrics = _fanout(session, k=2, hedge_delay=0.02)
    body, elapsed = _catalog(fanout)  # primaries on replica 1 (slow): both hedged
    assert body["missing"] == []
    assert body["parts"] == {
        b: {"backend": b, "item_id": "sku-1", "value": 2} for b in ("pricing", "inventory")
    }
    assert elapsed < 0.5
    assert sorted(p for p, _ in session.cancelled) == [1, 1]
    assert _sample(metrics, "fanout_hedges_total", backend="pricing") == 1
    assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="ok") == 1
    assert (
        _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="cancelled") == 1
    )
    _catalog(fanout)  # primaries on replica 2 (fast): no hedge
    assert _sample(metrics, "fanout_hedges_total", backend="pricing") == 1


def test_failure_before_the_hedge_ends_the_call() -> None:
    session = FakeSession({1: Replica(fail=True), 2: Replica()})
    fanout, metrics = _fanout(session, hedge_delay=0.05)
    body, _ = _catalog(fanout)
    assert body["missing"] == [{"backend": "pricing", "reason": "error"}]
    assert len(session.calls) == 1
    assert _sample(metrics, "fanout_hedges_total", backend="pricing") == 0


def test_failure_after_the_hedge_does_not_end_the_call() -> None:
    session = FakeSession({1: Replica(delay=0.05, status=500), 2: Replica(delay=0.1)})
    fanout, _ = _fanout(session, hedge_delay=0.01)
    body, _ = _catalog(fanout)  # primary 1 fails at 50 ms while the hedge to 2 runs
    assert body["missing"] == []
    body, _ = _catalog(fanout)  # primary 2 runs; the hedge to 1 fails first
    assert body["missing"] == []
    assert session.cancelled == []


def test_both_attempts_failing_reports_the_last_failure() -> None:
    session = FakeSession({1: Replica(delay=0.03, status=500), 2: Replica(delay=1.0)})
    fanout, metrics = _fanout(session, call_timeout=0.08, hedge_delay=0.01)
    body, elapsed = _catalog(fanout)
    assert body["missing"] == [{"backend": "pricing", "reason": "timeout"}]
    assert elapsed < 0.5
    assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="error") == 1
    assert _sample(metrics, "fanout_backend_calls_total", backend="pricing", outcome="timeout") == 1
