"""The inference pattern's gRPC front: the same model and dynamic batcher as the HTTP server
(``service``), behind the Open Inference Protocol's gRPC ``ModelInfer`` (KServe v2), on grpc.aio.

    python -m systems.inference.grpc_service --listen 127.0.0.1:8123 \\
        --metrics-listen 127.0.0.1:9123 --policy unbatched|dynamic --model mlp|transformer \\
        --seq-len 64 --device auto|cpu|cuda|cuda:N --threads 0 --max-batch-size 128 \\
        --max-queue-delay-us 2000 --queue 256 --max-request-samples 64 \\
        [--cuda-graphs[=true|false]] [--compile[=true|false]]

``inference.GRPCInferenceService/ModelInfer`` (proto/inference/v2/grpc_predict_v2.proto) and the
standard health service (SERVING for "" and the service's name once the model is warm) on
``--listen``; ``GET /metrics`` (the HTTP server's ``inference_*`` series, ``metrics``; a call's
status counted as the HTTP status of the same refusal, ``grpc_request.HTTP_STATUS``) and
``GET /healthz`` over HTTP on ``--metrics-listen``.

A call goes through, in order: grpc's receive limit (the HTTP server's body limit,
``request.body_limit``: RESOURCE_EXHAUSTED before any Python runs, and not counted); admission
(UNAVAILABLE when ``--queue`` requests already wait for a batch, before the request is decoded);
decoding and the checks of ``grpc_request`` (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED);
the batcher and the forward thread, as over HTTP (``core.Backend``); the answer, encoded in the
handler so that its time is counted. UNAVAILABLE when the server is stopping, INTERNAL when a
forward pass fails (one line in the log per failed pass, never a traceback to the client).

Start-up: bind, load the model and warm it up on the forward thread, start both servers, then
print ``listening on ADDR`` for each (gRPC first). SIGTERM or SIGINT: health NOT_SERVING,
``server.stop(grace=5)`` refuses new calls and lets those in flight finish for up to 5 s, the
batcher answers what it still holds, the forward thread ends, the metrics server closes, exit 0.
A bad flag is one line and exit 2; a device, warm-up or protobuf backend (not upb) that cannot
be used, one line and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from typing import Final

import grpc
import torch
from aiohttp import web
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from systems import grpc_serving, serving
from systems.inference import core
from systems.inference.batcher import Batcher, Overloaded, Stopped
from systems.inference.core import Config
from systems.inference.grpc_request import CallError, answer, decode, parse
from systems.inference.request import body_limit

PROG: Final = "inference-grpc"
SERVICE_NAME: Final = "inference.GRPCInferenceService"
#: How long calls in flight may take to finish after SIGTERM or SIGINT.
GRACE_S: Final = 5.0

Context = grpc.aio.ServicerContext[bytes, bytes]


class Front(core.ModelFront):
    """``ModelInfer``: requests in as bytes (decoded here, after admission), answers out as
    bytes (encoded here); every call counted in ``metrics``."""

    def __init__(
        self, config: Config, batcher: Batcher[torch.Tensor, torch.Tensor], info: dict[str, str]
    ) -> None:
        super().__init__(PROG, config, batcher, info)
        self._overloaded = f"overloaded: {config.queue} requests already wait for a batch"

    async def infer(self, data: bytes, context: Context) -> bytes:
        arrive = time.perf_counter()
        self.in_flight += 1
        status = 500
        try:
            encoded = await self._infer(data, arrive)
            status = 200
            return encoded
        except CallError as exc:
            status = exc.http_status
            await context.abort(exc.code, exc.message)
        except asyncio.CancelledError:  # the client went away, or its deadline passed
            status = 499
            raise
        except Exception:  # a bug: INTERNAL, never a traceback to the client
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            self.in_flight -= 1
            self._http.count(status, time.perf_counter() - arrive)

    async def _infer(self, data: bytes, arrive: float) -> bytes:
        # Admission before decoding: a refusal costs the loop (which the forward thread shares
        # the GIL with) next to nothing.
        if self._batcher.full:
            raise CallError(grpc.StatusCode.UNAVAILABLE, self._overloaded)
        call = parse(decode(data), self._model, self._shape, self._max_samples)
        try:
            pending = self._batcher.submit(call.inputs, call.samples, arrive)
        except Overloaded:
            raise CallError(grpc.StatusCode.UNAVAILABLE, self._overloaded) from None
        except Stopped:
            raise _shutting_down() from None
        try:
            logits = await pending.result()
        except Stopped:
            raise _shutting_down() from None
        except Exception as exc:
            self.metrics.observe_parts(*pending.parts)
            self.failed(exc)
            raise CallError(
                grpc.StatusCode.INTERNAL, "internal error: the forward pass failed"
            ) from None
        encoded = answer(self._model, call, logits)
        self.metrics.observe_parts(*pending.parts, time.perf_counter() - pending.done)
        return encoded

    def handler(self) -> grpc.GenericRpcHandler:
        """The service, bytes in and out (no deserializer: undecodable requests are refused
        INVALID_ARGUMENT by ``decode``, not UNKNOWN by grpc)."""
        infer: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self.infer)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {"ModelInfer": infer})


def _shutting_down() -> CallError:
    return CallError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down, retry elsewhere")


async def run(config: Config, device: torch.device) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (at most 5 s for calls in flight)."""
    serving.raise_fd_limit(config.queue + 4096)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    backend = core.Backend(config, device)
    front = Front(config, backend.batcher, backend.info)
    backend.batcher.on_pass = front.metrics.observe_pass
    limit = body_limit(config.max_request_samples, config.spec.sample_shape)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.so_reuseport", 0),  # a taken port is an error, not a second listener
        ]
    )
    server.add_generic_rpc_handlers((front.handler(),))
    healthy = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(healthy, server)
    address = grpc_serving.address(config.host, config.port)
    grpc_serving.check_bind(config.host, config.port)
    grpc_serving.check_bind(config.metrics_host, config.metrics_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # lost a race for the port (grpc has logged why)
        raise OSError(f"cannot listen on {address}") from None
    runner: web.ServerRunner | None = None
    try:
        await backend.start()
        runner = await grpc_serving.serve_metrics(front.metrics.registry, config.metrics_host,
                                     config.metrics_port)  # fmt: skip
        await server.start()
        for name in ("", SERVICE_NAME):
            await healthy.set(name, health_pb2.HealthCheckResponse.SERVING)
        metrics_host, metrics_port = runner.addresses[0][:2]
        print(f"listening on {grpc_serving.address(config.host, port)}\n"
              f"listening on {grpc_serving.address(metrics_host, metrics_port)}",
              file=sys.stderr, flush=True)  # fmt: skip
        await stopping.wait()
        await healthy.enter_graceful_shutdown()
    finally:
        # New calls are refused (UNAVAILABLE); those in flight get GRACE_S, then are cancelled.
        await server.stop(grace=GRACE_S)
        await backend.stop()
        if runner is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.cleanup(), timeout=2.0)


def protobuf_problem() -> str | None:
    """Why protobuf's Python backend is not the one to measure (upb, in C), if so."""
    backend = api_implementation.Type()
    if backend == "upb":
        return None
    return f"protobuf's {backend!r} backend is in use, not 'upb' (the pure-Python one is slow)"


def main(argv: Sequence[str] | None = None) -> int:
    config = core.parse_args(PROG, __doc__, argv, default_port=8123, metrics=True)
    problem = protobuf_problem()
    if problem is not None:
        print(f"{PROG}: refusing to start: {problem}", file=sys.stderr)
        return 1
    prepared = core.prepare(PROG, config)
    if prepared is None:
        return 1
    device, config = prepared
    # The scaffold's runner: uvloop, one line and status 1 on OSError or SetupError (a failed
    # warm-up), and aiohttp's C parser required (the metrics server is aiohttp).
    return serving.run(PROG, lambda: run(config, device))


if __name__ == "__main__":
    sys.exit(main())
