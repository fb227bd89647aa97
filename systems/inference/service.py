"""The inference pattern's Python server: a torch model over HTTP, batched dynamically or not.

    python -m systems.inference.service --listen 127.0.0.1:8122 --policy unbatched|dynamic \\
        --model mlp|transformer --seq-len 64 --device auto|cpu|cuda|cuda:N --threads 0 \\
        --max-batch-size 128 --max-queue-delay-us 2000 --queue 256 --max-request-samples 64 \\
        [--cuda-graphs[=true|false]] [--compile[=true|false]]

``POST /v2/models/{model}/infer``: one FP32 tensor ``input`` of shape ``[n, *sample_shape]`` in,
one FP32 tensor ``logits`` of shape ``[n, 10]`` out, the Open Inference Protocol's (KServe v2)
JSON (``request``); ``GET /healthz`` and ``GET /metrics`` (``metrics``) on the same port. Every
error is the envelope ``{"error": {"code", "message"}}``: 400 ``invalid_argument`` for a body
that is not a valid request, 413 ``resource_exhausted`` for more than ``--max-request-samples``
samples or a body over ``request.body_limit`` (by Content-Length, before reading; the
connection is closed), 404 for another model's path, 405 for a method other than POST, 503
``overloaded`` with ``Retry-After: 1`` when ``--queue`` requests already wait for a batch, 500
``internal`` when a forward pass fails (never a traceback).

The event loop (aiohttp on the scaffold, ``systems/serving.py``, uvloop) reads, decodes and
validates each request and queues it in the batcher (``batcher``); one forward thread runs the
batches (``accel.Engine``; the command line and this set-up are ``core``'s, shared with the gRPC
front, ``grpc_service``): ``unbatched``, one request a pass; ``dynamic``, up to
``--max-batch-size`` samples, the oldest request waiting at most ``--max-queue-delay-us`` for
others to join. ``--threads 0``: torch's intra-op threads are the CPUs given less one, the event
loop's (``model.forward_threads``); inter-op threads are 1. ``--cuda-graphs`` (CUDA only: refused
on the CPU, exit 1) and ``--compile`` pad a batch to the nearest bucket (``accel``).

Start-up: bind, load the model and warm it up on the forward thread (every bucket captured or
compiled), then print ``listening on ADDR``. SIGTERM or SIGINT: the scaffold's drain, then the
batcher answers what is queued or in a pass, the forward thread ends, exit 0. A bad flag is one
line and exit 2; a device or warm-up that cannot be used, one line and exit 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Final

import torch
from aiohttp import web

from systems import serving
from systems.inference import core
from systems.inference.batcher import Batcher, Overloaded, Stopped
from systems.inference.core import Config
from systems.inference.request import RequestError, answer_body, body_limit, parse, quote, read_body
from systems.serving import error_body, json_response, ops_response

PROG: Final = "inference"
MODELS_PATH: Final = "/v2/models/"
INFER: Final = "/infer"
_RETRY: Final = {"Retry-After": "1"}
_POST_ONLY: Final = error_body("method_not_allowed", "only POST is allowed here")
_SHUTTING_DOWN: Final = error_body("overloaded", "the server is shutting down, retry elsewhere")
_FAILED: Final = error_body("internal", "internal error: the forward pass failed")
_INTERNAL: Final = error_body("internal", "internal error")


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    return core.parse_args(PROG, __doc__, argv, default_port=8122)


class Handler(core.ModelFront):
    """Routes every request; counts the answers of the infer path and their durations."""

    def __init__(
        self, config: Config, batcher: Batcher[torch.Tensor, torch.Tensor], info: dict[str, str]
    ) -> None:
        super().__init__(PROG, config, batcher, info)
        self._limit = body_limit(config.max_request_samples, self._shape)
        self._overloaded = error_body(
            "overloaded", f"{config.queue} requests already wait for a batch, retry later"
        )

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(MODELS_PATH) and path.endswith(INFER):
            arrive = time.perf_counter()
            self.in_flight += 1
            try:
                response = await self._infer(request, path, arrive)
            except Exception:  # a bug: still the envelope, never a traceback to the client
                response = json_response(500, _INTERNAL)
            finally:
                self.in_flight -= 1
            self._http.count(response.status, time.perf_counter() - arrive)
            return response
        return ops_response(request.method, path, self.metrics.registry)

    async def _infer(self, request: web.BaseRequest, path: str, arrive: float) -> web.Response:
        name = path[len(MODELS_PATH) : -len(INFER)]
        if name != self._model:
            message = f"model {quote(name)}: not served here, this server serves {self._model!r}"
            return json_response(404, error_body("not_found", message))
        if request.method != "POST":
            return json_response(405, _POST_ONLY, {"Allow": "POST"})
        # Admission before the body is read: a refusal costs the loop (which the forward thread
        # shares the GIL with) next to nothing, where reading and parsing it would not.
        if self._batcher.full:
            return json_response(503, self._overloaded, _RETRY)
        try:
            parsed = parse(await read_body(request, self._limit), self._shape, self._max_samples)
        except RequestError as exc:
            return exc.response()
        try:
            pending = self._batcher.submit(parsed.inputs, parsed.samples, arrive)
        except Overloaded:
            return json_response(503, self._overloaded, _RETRY)
        except Stopped:
            return json_response(503, _SHUTTING_DOWN, _RETRY)
        try:
            logits = await pending.result()
        except Stopped:
            return json_response(503, _SHUTTING_DOWN, _RETRY)
        except Exception as exc:
            self.metrics.observe_parts(*pending.parts)
            self.failed(exc)
            return json_response(500, _FAILED)
        body = answer_body(self._model, parsed.id, logits)
        self.metrics.observe_parts(*pending.parts, time.perf_counter() - pending.done)
        return json_response(200, body)


async def run(config: Config, device: torch.device) -> None:
    """Serve until SIGTERM or SIGINT; drain; answer what the batcher holds; stop the thread."""
    serving.raise_fd_limit(config.queue + 4096)
    backend = core.Backend(config, device)
    handler = Handler(config, backend.batcher, backend.info)
    backend.batcher.on_pass = handler.metrics.observe_pass
    try:
        await serving.serve(handler, config.host, config.port, ready=backend.start)
    finally:
        await backend.stop()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    prepared = core.prepare(PROG, config)
    if prepared is None:
        return 1
    device, config = prepared
    return serving.run(PROG, lambda: run(config, device))


if __name__ == "__main__":
    sys.exit(main())
