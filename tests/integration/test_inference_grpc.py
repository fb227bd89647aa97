"""The inference pattern's gRPC front (systems/inference/grpc_service.py) as real processes on
free loopback ports, on the CPU: the model's outputs with the data raw and as fp32_contents,
every bad input of the contract as its status code and message (and the server serving on after
each), the receive limit, shedding with UNAVAILABLE, batching and the HTTP server's series on the
metrics port, the health service, and a SIGTERM that answers the calls in flight and exits 0.

Three servers start together (module-scoped): dynamic with the mlp, a small-queue server for the
flood, and one that the last test stops. A burst is every call started at once on one channel
(futures), then every answer read.
"""

from __future__ import annotations

import math
import signal
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from systems.inference import model
from systems.inference.gen import grpc_predict_v2_pb2 as pb
from systems.inference.request import body_limit
from tests.integration.service_process import Proc, _get, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVICE = [sys.executable, "-m", "systems.inference.grpc_service"]
SERVERS: dict[str, list[str]] = {
    "dynamic": ["--policy", "dynamic", "--max-batch-size", "64", "--max-queue-delay-us", "2000"],
    "flood": [
        *("--policy", "dynamic", "--max-batch-size", "1", "--max-request-samples", "1"),
        *("--queue", "2"),
    ],
    # Calls wait up to 2 s for their batch to fill: still in flight when SIGTERM comes.
    "drain": ["--policy", "dynamic", "--max-batch-size", "64", "--max-queue-delay-us", "2000000"],
}
MLP = model.Spec("mlp")
INFER = "/inference.GRPCInferenceService/ModelInfer"
Tensor = pb.ModelInferRequest.InferInputTensor


class Server:
    """A running server: its process, gRPC and metrics addresses, and a channel to it."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.addr, self.metrics = proc.wait_listening(2, timeout=90)
        self.channel = grpc.insecure_channel(self.addr)
        self.infer = self.channel.unary_unary(
            INFER,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model weights' folder, shared by the servers and the reference model."""
    folder = tmp_path_factory.mktemp("models")
    model.load(MLP, folder)
    return folder


@pytest.fixture(scope="module")
def servers(cache: Path) -> Iterator[dict[str, Server]]:
    """Every server, started at once; each must exit 0 having logged only ``listening on``."""
    listen = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--device", "cpu"]
    procs = {
        name: Proc([*SERVICE, *listen, *flags], env={model.CACHE_ENV: str(cache)})
        for name, flags in SERVERS.items()
    }
    started: dict[str, Server] = {}
    try:
        started.update({name: Server(proc) for name, proc in procs.items()})
        yield started
    finally:
        for server in started.values():
            server.channel.close()
        for proc in procs.values():
            proc.stop()
        for proc in procs.values():
            assert proc.popen.returncode == 0, proc.log
            assert all(line.startswith("listening on ") for line in proc.log), proc.log


def request(n: int, seed: int = 0, *, raw: bool = True, **tensor: Any) -> pb.ModelInferRequest:
    """``n`` samples of the mlp's example inputs, raw or as fp32_contents."""
    values = model.example(MLP, n, seed).flatten().tolist()
    fields: dict[str, Any] = {"name": "input", "datatype": "FP32", "shape": [n, 512], **tensor}
    if raw:
        data = struct.pack(f"<{len(values)}f", *values)
        return pb.ModelInferRequest(
            model_name="mlp", inputs=[Tensor(**fields)], raw_input_contents=[data]
        )
    fields.setdefault("contents", pb.InferTensorContents(fp32_contents=values))
    return pb.ModelInferRequest(model_name="mlp", inputs=[Tensor(**fields)])


def logits(answer: pb.ModelInferResponse) -> torch.Tensor:
    (out,) = answer.outputs
    n = int(out.shape[0])
    assert (out.name, out.datatype, list(out.shape)) == ("logits", "FP32", [n, 10])
    if answer.raw_output_contents:
        (data,) = answer.raw_output_contents
        values = list(struct.unpack(f"<{len(data) // 4}f", data))
    else:
        values = list(out.contents.fp32_contents)
    return torch.tensor(values).reshape(n, 10)


def status(server: Server, req: pb.ModelInferRequest) -> tuple[str, str]:
    """The code and details a call ends with."""
    try:
        server.infer(req, timeout=30)
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""
    return "OK", ""


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "fp32_contents"])
@pytest.mark.parametrize("n", [1, 3])
def test_answers_are_the_models_outputs(
    servers: dict[str, Server], cache: Path, raw: bool, n: int
) -> None:
    req = request(n, seed=n, raw=raw)
    req.id = f"req-{n}"
    answer = servers["dynamic"].infer(req, timeout=30)
    assert (answer.model_name, answer.id) == ("mlp", f"req-{n}")
    assert bool(answer.raw_output_contents) == raw
    expected = model.Runner(MLP, torch.device("cpu"), cache).run(model.example(MLP, n, n))
    torch.testing.assert_close(logits(answer), expected, rtol=1e-4, atol=1e-5)


def test_the_health_service_says_serving(servers: dict[str, Server]) -> None:
    stub = health_pb2_grpc.HealthStub(servers["dynamic"].channel)
    for name in ("", "inference.GRPCInferenceService"):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert _get(servers["dynamic"].metrics, "/healthz") == b'{"status":"ok"}'


# --- bad input ----------------------------------------------------------------------------------


def _with(req: pb.ModelInferRequest, **fields: Any) -> pb.ModelInferRequest:
    out = pb.ModelInferRequest()
    out.CopyFrom(req)
    for key, value in fields.items():
        if key == "raw_input_contents":
            del out.raw_input_contents[:]
            out.raw_input_contents.extend(value)
        else:
            setattr(out, key, value)
    return out


ONE = request(1)
NAN = [math.nan] + [0.0] * 511
BAD: list[tuple[str, pb.ModelInferRequest, str, str]] = [
    ("another model", _with(ONE, model_name="resnet50"), "NOT_FOUND",
     'model_name: model "resnet50" is not served here'),
    ("no inputs", pb.ModelInferRequest(model_name="mlp"), "INVALID_ARGUMENT",
     "inputs: want exactly one tensor, got 0"),
    ("wrong name", request(1, name="x"), "INVALID_ARGUMENT", 'inputs[0].name: want "input"'),
    ("wrong dtype", request(1, datatype="FP16"), "INVALID_ARGUMENT", "wrong dtype"),
    ("wrong shape", request(1, shape=[1, 511]), "INVALID_ARGUMENT", "want [n, 512], got [1, 511]"),
    ("empty batch", _with(request(1, shape=[0, 512]), raw_input_contents=[b""]),
     "INVALID_ARGUMENT", "empty batch"),
    ("short raw", _with(ONE, raw_input_contents=[b"\0" * 2044]), "INVALID_ARGUMENT",
     "raw_input_contents[0]: want 2048 bytes"),
    ("short contents", request(1, raw=False, contents=pb.InferTensorContents(fp32_contents=[1])),
     "INVALID_ARGUMENT", "fp32_contents: want 512 values, got 1"),
    ("NaN raw", _with(ONE, raw_input_contents=[struct.pack("<512f", *NAN)]), "INVALID_ARGUMENT",
     "raw_input_contents[0]: a value is NaN or infinite"),
    ("infinite", request(1, raw=False, contents=pb.InferTensorContents(
        fp32_contents=[math.inf] + [0.0] * 511)), "INVALID_ARGUMENT", "NaN or infinite"),
    ("oversized", request(1, shape=[65, 512]), "RESOURCE_EXHAUSTED", "oversized batch"),
]  # fmt: skip


@pytest.mark.parametrize(("req", "code", "part"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_call_gets_its_code_and_a_message_naming_the_field(
    servers: dict[str, Server], req: pb.ModelInferRequest, code: str, part: str
) -> None:
    got, details = status(servers["dynamic"], req)
    assert got == code
    assert part in details
    assert status(servers["dynamic"], ONE) == ("OK", "")


def test_bytes_that_are_not_a_request_are_invalid_argument(servers: dict[str, Server]) -> None:
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = servers["dynamic"].channel.unary_unary(INFER)
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff", timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a ModelInferRequest" in (caught.value.details() or "")


def test_a_request_over_the_body_limit_is_resource_exhausted(servers: dict[str, Server]) -> None:
    limit = body_limit(64, MLP.sample_shape)
    big = _with(request(1, shape=[64, 512]), raw_input_contents=[b"\0" * (limit + 1)])
    assert status(servers["dynamic"], big)[0] == "RESOURCE_EXHAUSTED"
    # The largest request that may be sent is under it, by far (4 bytes a value, raw).
    assert status(servers["dynamic"], request(64))[0] == "OK"


# --- load: shedding, batching, the series ----------------------------------------------------


def burst(server: Server, requests: list[pb.ModelInferRequest]) -> list[tuple[str, str]]:
    """Every call started at once, then every answer's code and details, in order."""
    futures = [server.infer.future(req, timeout=60) for req in requests]
    out = []
    for future in futures:
        error = future.exception()
        if error is None:
            out.append(("OK", ""))
        else:
            assert isinstance(error, grpc.RpcError)
            out.append((error.code().name, error.details() or ""))
    return out


def test_a_flood_past_the_queue_is_shed_with_unavailable(servers: dict[str, Server]) -> None:
    flood = servers["flood"]
    before = metric(flood.metrics, "inference_requests_total", code="503")
    answers = burst(flood, [ONE] * 150)
    codes = [code for code, _ in answers]
    assert set(codes) <= {"OK", "UNAVAILABLE"}
    assert 0 < codes.count("UNAVAILABLE") < 150
    assert all("overloaded" in details for code, details in answers if code == "UNAVAILABLE")
    after = metric(flood.metrics, "inference_requests_total", code="503")
    assert after - before == codes.count("UNAVAILABLE")
    assert status(flood, ONE) == ("OK", "")


def test_calls_are_batched_and_counted_in_the_http_servers_series(
    servers: dict[str, Server],
) -> None:
    server = servers["dynamic"]

    def read(name: str, **labels: str) -> float:
        return metric(server.metrics, name, **labels)

    names = (
        "inference_batch_size_sum",
        "inference_batch_size_count",
        "inference_request_duration_seconds_count",
        "inference_forward_seconds_count",
    )
    before = {name: read(name) for name in names}
    ok_before = read("inference_requests_total", code="200")
    bad_before = read("inference_requests_total", code="400")
    sizes = [1 + i % 3 for i in range(60)]
    answers = burst(server, [request(n, raw=i % 2 == 0) for i, n in enumerate(sizes)])
    assert answers == [("OK", "")] * 60
    assert status(server, request(1, name="x"))[0] == "INVALID_ARGUMENT"
    delta = {name: read(name) - before[name] for name in names}
    assert delta["inference_batch_size_sum"] == sum(sizes)
    assert 0 < delta["inference_batch_size_count"] <= 60
    assert delta["inference_forward_seconds_count"] == delta["inference_batch_size_count"]
    assert delta["inference_request_duration_seconds_count"] == 61
    assert read("inference_requests_total", code="200") - ok_before == 60
    assert read("inference_requests_total", code="400") - bad_before == 1
    text = _get(server.metrics, "/metrics").decode()
    for series in (
        "inference_queue_seconds",
        "inference_batch_formation_seconds",
        "inference_compute_seconds",
        "inference_in_flight",
        "inference_queue_depth",
    ):
        assert f"\n{series}" in text, series  # fmt: skip
    assert 'policy="dynamic"' in text
    assert 'device="cpu"' in text


# --- shutdown -----------------------------------------------------------------------------------


def test_sigterm_answers_the_calls_in_flight_and_exits_0(servers: dict[str, Server]) -> None:
    server = servers["drain"]
    futures = [server.infer.future(request(1, seed=i), timeout=60) for i in range(5)]
    assert wait_for(lambda: metric(server.metrics, "inference_in_flight") == 5, timeout=30)
    server.proc.popen.send_signal(signal.SIGTERM)
    assert [future.exception() for future in futures] == [None] * 5
    assert all(len(future.result().raw_output_contents[0]) == 40 for future in futures)
    assert server.proc.popen.wait(30) == 0
