"""What a Python service needs to refuse work while overloaded instead of queueing it out of sight.

An admission count (requests in flight) sees only requests the event loop has already read. When
the loop is saturated the rest wait where no count sees them, in socket buffers and in the
listen socket's accept queue, and so does every request there, /healthz's included. Two things
keep that wait short:

- ``AdaptiveLimit``: a limit on requests in progress that shrinks while the loop runs late and
  grows back while it keeps up, so that the loop keeps a margin to read and refuse the rest.
  Refusals are cheap; the work of an admitted request (a fan-out's backend calls, whose answers
  the loop must read in time; a pool's task) is not.
- ``GreedySite``: an aiohttp site that accepts every pending connection each time the listening
  socket is readable. The libuv that uvloop bundles accepts *one* connection per loop iteration
  (since 2022, libuv PR #3696): with iterations of tens of milliseconds a load generator opening
  hundreds of connections (or a health check opening one) waits seconds in the accept queue,
  however fast the service refuses once it reads the request. asyncio's own loop accepts up to
  the backlog at a time, as this site does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from typing import Final

from aiohttp import web

#: How often the lag timer is due: the lag is known to within this much.
LAG_INTERVAL_S: Final = 0.01
#: How long accepting pauses when the process is out of file descriptors (as asyncio does).
ACCEPT_RETRY_S: Final = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class AdaptiveLimit:
    """A limit on work in progress that adapts to the event loop's lag, as TCP's congestion
    window adapts to loss: additive increase, multiplicative decrease (AIMD).

    ``value`` starts at ``maximum`` and stays between 1 and it. A timer is due every
    ``interval``; each time it runs ``max_lag`` late or more, ``value`` shrinks by
    ``DECREASE`` (the loop is behind: admitting less work lets it catch up); each time it runs
    on time, ``value`` grows by one. Under a load the loop keeps up with the limit stays at
    ``maximum``, and a single stall (a GC pause, a neighbour's CPU steal) lowers it by a quarter
    for about a third of a second; past the loop's capacity it settles where the loop runs about
    ``max_lag`` late, and since refusals are cheap the loop then keeps answering within about
    that much.
    ``max_lag`` 0 fixes ``value`` at ``maximum``. ``start()`` on the running loop; ``stop()``.
    """

    #: The factor ``value`` is multiplied by at each late tick.
    DECREASE: Final = 0.75

    def __init__(self, maximum: int, max_lag: float, interval: float = LAG_INTERVAL_S) -> None:
        self.maximum = maximum
        self._max_lag = max_lag
        self._interval = interval
        self._value = float(maximum)
        self._due = float("inf")
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def value(self) -> int:
        return int(self._value)

    def start(self) -> None:
        if self._max_lag > 0:
            self._loop = asyncio.get_running_loop()
            self._schedule(time.monotonic())

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self._interval
        self._handle = self._loop.call_later(self._interval, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.observe(now - self._due)
        self._schedule(now)

    def observe(self, late: float) -> None:
        """Adapt to one tick that ran ``late`` seconds after it was due."""
        if late >= self._max_lag:
            self._value = max(1.0, self._value * self.DECREASE)
        else:
            self._value = min(float(self.maximum), self._value + 1.0)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _Listener(asyncio.AbstractServer):
    """The listening socket as aiohttp's runner sees a site's server: its sockets, close()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._sock is None else (self._sock,)

    def close(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def wait_closed(self) -> None:
        return None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._sock is not None

    async def start_serving(self) -> None:
        return None  # serving from start(): the reader is added there

    async def serve_forever(self) -> None:
        raise NotImplementedError("the runner serves a site; nothing to wait for here")


class GreedySite(web.BaseSite):
    """A TCP site (``web.TCPSite``'s arguments) that accepts every pending connection at once.

    Each time the listening socket is readable it accepts until none is left (at most
    ``backlog``) and hands each connection to the runner's server through
    ``loop.connect_accepted_socket``. Out of file descriptors, it stops accepting for a second
    (the connections wait in the accept queue), as asyncio's own loop does.
    """

    def __init__(
        self, runner: web.BaseRunner, host: str | None, port: int, *, backlog: int = 128
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._connecting: set[asyncio.Task[object]] = set()

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        family, kind, proto, _, address = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self._backlog)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            reason = (e.strerror or str(e)).lower()
            raise OSError(f"cannot listen on {self.name.removeprefix('http://')}: {reason}") from e
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._server = _Listener(loop, sock)
        loop.add_reader(sock.fileno(), self._accept, loop, sock)

    def _accept(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        server = self._runner.server
        assert server is not None
        for _ in range(self._backlog):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                loop.remove_reader(sock.fileno())
                loop.call_later(ACCEPT_RETRY_S, self._resume, loop, sock)
                return
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(loop.connect_accepted_socket(server, conn))
            self._connecting.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._connecting.discard(task)
        if not task.cancelled():
            task.exception()  # a client gone before its transport was set up: nothing to serve

    def _resume(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        if self._server is not None and self._server.is_serving():
            loop.add_reader(sock.fileno(), self._accept, loop, sock)
