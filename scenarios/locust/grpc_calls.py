"""gRPC under Locust: what the gRPC locustfiles share, whatever service they call.

Importing this module makes grpcio wait cooperatively under gevent (grpcio's own threads would
block Locust's loop), which must happen before any channel is made; a locustfile imports it
before it makes its users. Then:

- `open_channel(host)`: a user's own channel to Locust's `--host` (`http://host:port` as the
  harness gives it, `grpc://host:port` or `host:port`; `grpc_target`), with `CHANNEL_OPTIONS`:
  one HTTP/2 connection per user, as an HTTP user has its own, and no receive limit;
- `timed_call(user, name, timeout_s, context)`: a block that makes one call (a unary one, or a
  stream drained to its end), timed to its answer, that fires Locust's request event with
  request_type "grpc", the method's `name` and the answer's size in bytes; a non-OK status fails
  the call with a `GrpcStatusError` and goes no further;
- `GrpcStatusError`: its `error_kind` is what the harness's recorder (`bench.engines.recording`)
  counts it as, named as loadgen names its errors: `grpc <Code>` in grpc-go's spelling
  (`grpc InvalidArgument`, `grpc Unavailable`; `go_name`), or `timeout` for a call that ran past
  its own deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User
from locust.exception import LocustError

grpc_gevent.init_gevent()

#: Each user's own connection (grpcio otherwise shares one among channels of the same target, so
#: that N closed-loop users would be N streams on one connection while HTTP users have N), and no
#: receive limit (1,000 items of 4,096 features are 16 MB).
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", -1),
]


class GrpcStatusError(Exception):
    """A call that ended with a non-OK status, or with no answer by the client's deadline.

    `error_kind` is what the harness's recorder counts it as, named as loadgen names it
    (`grpc InvalidArgument`, or `timeout` when `--timeout-s` passed); `repr()`, which Locust's
    failure table shows, adds the details.
    """

    def __init__(self, code: grpc.StatusCode, details: str, error_kind: str) -> None:
        super().__init__(code.name, details)
        self.code = code
        self.details = details
        self.error_kind = error_kind

    def __str__(self) -> str:
        return str(self.code.name)

    def __repr__(self) -> str:
        return f"{self.code.name}: {self.details}"


def go_name(code: grpc.StatusCode) -> str:
    """The code as grpc-go's `codes.Code.String()` writes it (loadgen's error kinds)."""
    special = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}
    return special.get(code) or "".join(w.capitalize() for w in code.name.split("_"))


def status_error(error: grpc.RpcError, elapsed_s: float, timeout_s: float) -> GrpcStatusError:
    """The failure a call that raised `error` after `elapsed_s` is recorded as: `timeout` when
    its own deadline (`timeout_s`) passed, else its status as `grpc <Code>`."""
    code, details = error.code(), str(error.details() or "")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and elapsed_s >= timeout_s:
        return GrpcStatusError(code, details, "timeout")
    return GrpcStatusError(code, details, f"grpc {go_name(code)}")


def grpc_target(host: str | None) -> str:
    """`host:port` from the user's host: `http://host:port`, `grpc://host:port` or `host:port`."""
    if not host:
        raise LocustError("no host: give --host host:port (or http://host:port)")
    return urlsplit(host).netloc if "://" in host else host


def open_channel(host: str | None) -> grpc.Channel:
    """A channel of its own to `host` (Locust's `--host`), with `CHANNEL_OPTIONS`."""
    return grpc.insecure_channel(grpc_target(host), options=CHANNEL_OPTIONS)


class Call:
    """One call being timed: `length` is its answer's size in bytes, set (or added to, message
    by message) as the answer comes."""

    __slots__ = ("length",)

    def __init__(self) -> None:
        self.length = 0


@contextmanager
def timed_call(user: User, name: str, timeout_s: float, context: dict[str, Any]) -> Iterator[Call]:
    """Time the call the block makes, then fire Locust's request event for it.

    The event carries request_type "grpc", `name`, the block's time in milliseconds, the
    `Call`'s length, and the user's context with `context` over it (the open-loop user's
    intended send time); a `grpc.RpcError` raised in the block is the event's exception, as a
    `GrpcStatusError` (`status_error`, `timeout_s` being the call's deadline), and is not raised
    further. Any other exception is raised as it is, with no event.
    """
    call = Call()
    exception: Exception | None = None
    start = time.perf_counter()
    try:
        yield call
    except grpc.RpcError as e:
        exception = status_error(e, time.perf_counter() - start, timeout_s)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    user.environment.events.request.fire(
        request_type="grpc",
        name=name,
        response_time=elapsed_ms,
        response_length=call.length,
        response=None,
        context={**user.context(), **context},
        exception=exception,
    )
