"""Inference load over gRPC: Open Inference Protocol's `ModelInfer` (KServe v2), the same request
every call.

The locustfile of the inference pattern's gRPC server (python-dynamic-grpc,
systems/inference/grpc_service.py; scenarios/locust/inference.py is the HTTP servers'):
`InferGrpcUser` closed-loop (each user sends its next call after the previous answer, at most
`--user-rate` per second), `OpenLoopInferGrpc` open-loop (calls at a target rate whatever the
answers). grpcio under gevent, one channel (and one HTTP/2 connection) per user, no receive
limit (scenarios/locust/grpc_calls.py). Each call fires Locust's request event with
request_type "grpc", name "ModelInfer", the time to the answer and the answer's size; a non-OK
status fails it with a `GrpcStatusError`.

Runs on its own with Locust's web UI, or headless naming the class:

    locust -f scenarios/locust/inference_grpc.py --host 127.0.0.1:8123 --model mlp InferGrpcUser

and under the harness (`patternbench run inference --param engine=locust`, the `[scenarios.grpc]`
set of systems/inference/system.toml), which records every call's latency into HDR histograms
through `bench.engines.recording`. `--host` may be written `http://host:port` (as the harness
gives it), `grpc://host:port` or `host:port`.

The request is the loadgen engine's (`python -m systems.inference.vectors --grpc-request`): a
`ModelInferRequest` of one FP32 tensor, its data raw (little-endian float32 in
`raw_input_contents`, the form a KServe client sends), built once from
`systems.inference.vectors.grpc_request` and encoded once; the answer is not decoded (its size
is what is recorded). The options are sent as given, invalid ones included (`--samples` past the
server's `--max-request-samples` measures the cost of refusals: RESOURCE_EXHAUSTED).

Error kinds, as the harness's report reads them (`bench.stats.headroom`): a status is
`grpc <Code>` as loadgen writes it (`grpc Unavailable` when the batcher's queue is full,
`grpc ResourceExhausted`), a call that ran past `--timeout-s` is `timeout`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import grpc
from google.protobuf import json_format
from locust import User, events, task

from bench.engines import recording
from scenarios.locust.grpc_calls import open_channel, timed_call
from scenarios.locust.pacing import add_user_rate, paced
from systems.inference.gen import grpc_predict_v2_pb2 as pb
from systems.inference.vectors import METHOD, grpc_request

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    add_user_rate(parser, "calls")
    parser.add_argument("--model", default="mlp", help="mlp | transformer")
    parser.add_argument("--seq-len", type=int, default=64, help="transformer: vectors a sample")
    parser.add_argument("--samples", type=int, default=1, help="samples per call")
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="the call's deadline, in seconds"
    )


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


@cache
def request_bytes(model: str, seq_len: int, samples: int) -> bytes:
    """The encoded `ModelInferRequest`: `samples` samples of `model`'s inputs, raw."""
    message = json_format.ParseDict(
        grpc_request(model, seq_len, samples, raw=True), pb.ModelInferRequest()
    )
    return message.SerializeToString()


class GrpcInferUser(User):
    """A User with one gRPC channel of its own, to `--host`, and the request it sends."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.request = request_bytes(str(options.model), int(options.seq_len), int(options.samples))
        self.timeout_s = float(options.timeout_s)
        self.channel = open_channel(self.host)
        # Bytes in, bytes out: the request is encoded once, the answer left as it came.
        self.model_infer: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary(
            METHOD
        )

    def on_stop(self) -> None:
        self.channel.close()


def send_infer(user: GrpcInferUser, context: dict[str, Any]) -> None:
    """One `ModelInfer` call."""
    with timed_call(user, "ModelInfer", user.timeout_s, context) as call:
        call.length = len(user.model_infer(user.request, timeout=user.timeout_s))


class InferGrpcUser(GrpcInferUser):
    """A gRPC client asking for inferences, closed-loop: its next call after the previous answer,
    at most `--user-rate` per second."""

    def wait_time(self) -> float:
        return paced(self)

    @task
    def infer(self) -> None:
        send_infer(self, {})


OpenLoopInferGrpc = recording.open_loop_user(GrpcInferUser, send_infer, name="OpenLoopInferGrpc")
