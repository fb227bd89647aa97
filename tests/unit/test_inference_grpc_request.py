"""The gRPC inference call's parsing: a valid ModelInferRequest (raw bytes or fp32_contents) as a
float32 tensor, every kind of bad request as its status code and a message naming the field, the
answer in the request's form, and each code as the HTTP status the shared metrics count."""

from __future__ import annotations

import math
import struct
from typing import Any

import grpc
import pytest
import torch

from systems.inference.gen import grpc_predict_v2_pb2 as pb
from systems.inference.grpc_request import CallError, answer, decode, parse

SHAPE = (4,)
MAX = 3
DATA = [0.5, -1.0, 2.25, 0.0, 1.0, 2.0, 3.0, 4.0]
Tensor = pb.ModelInferRequest.InferInputTensor


def raw(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def request(
    *, as_raw: bool = False, data: list[float] = DATA, **tensor: Any
) -> pb.ModelInferRequest:
    fields: dict[str, Any] = {"name": "input", "datatype": "FP32", "shape": [2, 4], **tensor}
    if as_raw:
        return pb.ModelInferRequest(
            model_name="mlp", inputs=[Tensor(**fields)], raw_input_contents=[raw(data)]
        )
    fields.setdefault("contents", pb.InferTensorContents(fp32_contents=data))
    return pb.ModelInferRequest(model_name="mlp", inputs=[Tensor(**fields)])


def refused(req: pb.ModelInferRequest, shape: tuple[int, ...] = SHAPE) -> tuple[str, str]:
    with pytest.raises(CallError) as caught:
        parse(req, "mlp", shape, MAX)
    return caught.value.code.name, caught.value.message


@pytest.mark.parametrize("as_raw", [True, False])
def test_a_valid_call_is_a_float32_tensor_of_its_shape(as_raw: bool) -> None:
    req = request(as_raw=as_raw)
    req.id = "r1"
    call = parse(req, "mlp", SHAPE, MAX)
    assert (call.id, call.samples, call.raw) == ("r1", 2, as_raw)
    assert call.inputs.dtype == torch.float32
    assert torch.equal(call.inputs, torch.tensor(DATA).reshape(2, 4))


def test_a_sequence_model_takes_samples_of_two_dimensions() -> None:
    call = parse(request(shape=[1, 2, 4]), "mlp", (2, 4), MAX)
    assert call.inputs.shape == (1, 2, 4)
    code, message = refused(request(shape=[2, 4]), (2, 4))
    assert (code, message) == ("INVALID_ARGUMENT", "inputs[0].shape: want [n, 2, 4], got [2, 4]")


def two_inputs() -> pb.ModelInferRequest:
    req = request()
    req.inputs.append(req.inputs[0])
    return req


def two_raws() -> pb.ModelInferRequest:
    req = request(as_raw=True)
    req.raw_input_contents.append(b"")
    return req


def both_forms() -> pb.ModelInferRequest:
    req = request(as_raw=True)
    req.inputs[0].contents.fp32_contents.extend(DATA)
    return req


def another_output() -> pb.ModelInferRequest:
    req = request()
    req.outputs.add(name="probs")
    return req


BAD: list[tuple[str, pb.ModelInferRequest, str, str]] = [
    ("another model", pb.ModelInferRequest(model_name="resnet50"), "NOT_FOUND",
     "model_name: model \"resnet50\" is not served here, this server serves 'mlp'"),
    ("no inputs", pb.ModelInferRequest(model_name="mlp"), "INVALID_ARGUMENT",
     "inputs: want exactly one tensor, got 0"),
    ("two inputs", two_inputs(), "INVALID_ARGUMENT", "inputs: want exactly one tensor, got 2"),
    ("wrong name", request(name="x"), "INVALID_ARGUMENT",
     'inputs[0].name: want "input", got "x"'),
    ("wrong dtype", request(datatype="FP16"), "INVALID_ARGUMENT",
     'inputs[0].datatype: wrong dtype: want "FP32", got "FP16"'),
    ("another output", another_output(), "INVALID_ARGUMENT",
     'outputs[0].name: want "logits", got "probs"'),
    ("wrong shape", request(shape=[2, 3]), "INVALID_ARGUMENT",
     "inputs[0].shape: want [n, 4], got [2, 3]"),
    ("negative n", request(shape=[-1, 4]), "INVALID_ARGUMENT",
     "inputs[0].shape: want [n, 4], got [-1, 4]"),
    ("empty batch", request(shape=[0, 4], data=[]), "INVALID_ARGUMENT",
     "inputs[0].shape: empty batch (n = 0), want [n, 4] with n ≥ 1"),
    ("oversized", request(shape=[4, 4]), "RESOURCE_EXHAUSTED",
     "inputs[0].shape: oversized batch: 4 samples, at most 3 a request"),
    ("short contents", request(data=DATA[1:]), "INVALID_ARGUMENT",
     "inputs[0].contents.fp32_contents: want 8 values, got 7"),
    ("no data", request(contents=pb.InferTensorContents()), "INVALID_ARGUMENT",
     "inputs[0].contents.fp32_contents: want 8 values, got 0"),
    ("short raw", request(as_raw=True, data=DATA[1:]), "INVALID_ARGUMENT",
     "raw_input_contents[0]: want 32 bytes (8 little-endian float32 values), got 28"),
    ("two raws", two_raws(), "INVALID_ARGUMENT",
     "raw_input_contents: want one entry (for inputs[0]), got 2"),
    ("both forms", both_forms(), "INVALID_ARGUMENT",
     "inputs[0].contents: must be empty when raw_input_contents carries the data"),
    ("NaN", request(data=[math.nan, *DATA[1:]]), "INVALID_ARGUMENT",
     "inputs[0].contents.fp32_contents: a value is NaN or infinite"),
    ("raw infinity", request(as_raw=True, data=[*DATA[1:], math.inf]), "INVALID_ARGUMENT",
     "raw_input_contents[0]: a value is NaN or infinite"),
]  # fmt: skip


@pytest.mark.parametrize(("req", "code", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_bad_call_gets_its_code_and_a_message_naming_the_field(
    req: pb.ModelInferRequest, code: str, message: str
) -> None:
    assert refused(req) == (code, message)


def test_bytes_that_are_not_a_request_are_invalid_argument() -> None:
    assert decode(request().SerializeToString()) == request()
    with pytest.raises(CallError, match="not a ModelInferRequest") as caught:
        decode(b"\xff\xff\xff")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("code", "status"),
    [("INVALID_ARGUMENT", 400), ("NOT_FOUND", 404), ("RESOURCE_EXHAUSTED", 413),
     ("UNAVAILABLE", 503), ("INTERNAL", 500), ("UNKNOWN", 500)],
)  # fmt: skip
def test_a_refusal_is_counted_as_the_http_fronts_status(code: str, status: int) -> None:
    assert CallError(grpc.StatusCode[code], "x").http_status == status


@pytest.mark.parametrize("as_raw", [True, False])
def test_the_answer_carries_the_logits_in_the_requests_form(as_raw: bool) -> None:
    req = request(as_raw=as_raw)
    req.id = "r2"
    call = parse(req, "mlp", SHAPE, MAX)
    logits = torch.arange(20, dtype=torch.float32).reshape(2, 10) / 8
    out = pb.ModelInferResponse.FromString(answer("mlp", call, logits))
    assert (out.model_name, out.id) == ("mlp", "r2")
    (tensor,) = out.outputs
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("logits", "FP32", [2, 10])
    if as_raw:
        assert out.raw_output_contents == [raw(logits.flatten().tolist())]
        assert not tensor.HasField("contents")
    else:
        assert list(tensor.contents.fp32_contents) == logits.flatten().tolist()
        assert list(out.raw_output_contents) == []
