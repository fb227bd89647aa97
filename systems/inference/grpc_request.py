"""A gRPC inference call's request, checked and made a tensor, and its answer: the
Open Inference Protocol's ``ModelInfer`` (proto/inference/v2/grpc_predict_v2.proto) as the
HTTP front's JSON is in ``request``, with the same checks in the same order and messages naming
the field the same way.

The data comes in one of KServe's two forms: ``raw_input_contents[0]``, the tensor's
little-endian float32 bytes (the binary form: one copy into an array, no per-value work), or
``inputs[0].contents.fp32_contents``, a packed repeated float. The answer carries the logits in
the form the request used.

Every refusal is a ``CallError``: its gRPC status, its message, and the HTTP status the metrics
count it as (``HTTP_STATUS``), so both fronts fill the same ``inference_requests_total{code}``.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

import grpc
import torch
from google.protobuf.message import DecodeError

from systems.inference.gen import grpc_predict_v2_pb2 as pb
from systems.inference.request import DATATYPE, INPUT, OUTPUT, quote

#: A gRPC status as the HTTP front's status for the same refusal, for the shared metrics
#: (CANCELLED: a client that went away, 499 as over HTTP; never sent).
HTTP_STATUS: Final = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.CANCELLED: 499,
}
FLOAT32_BYTES: Final = 4
_BIG_ENDIAN: Final = sys.byteorder == "big"


class CallError(Exception):
    """A refused call: its status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def _invalid(message: str) -> NoReturn:
    raise CallError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True, slots=True)
class Call:
    """A valid call: its id ("" when not given), its samples (float32, (n, *shape)), and
    whether its data came raw (the answer's then does too)."""

    id: str
    inputs: torch.Tensor
    raw: bool

    @property
    def samples(self) -> int:
        return int(self.inputs.shape[0])


def decode(data: bytes) -> pb.ModelInferRequest:
    """The request in ``data``; INVALID_ARGUMENT when it is not one (grpc's own deserializer
    would answer UNKNOWN)."""
    try:
        return pb.ModelInferRequest.FromString(data)
    except DecodeError as exc:
        _invalid(f"not a ModelInferRequest: {exc}")


def _shape(shape: Sequence[int], sample_shape: tuple[int, ...], max_samples: int) -> int:
    """The number of samples the input's shape declares, checked against the model's."""
    want = f"[n, {', '.join(map(str, sample_shape))}]"
    got = f"[{', '.join(map(str, shape))}]"
    if len(shape) != 1 + len(sample_shape) or tuple(shape[1:]) != sample_shape or shape[0] < 0:
        _invalid(f"inputs[0].shape: want {want}, got {got}")
    n = int(shape[0])
    if n == 0:
        _invalid(f"inputs[0].shape: empty batch (n = 0), want {want} with n ≥ 1")
    if n > max_samples:
        raise CallError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"inputs[0].shape: oversized batch: {n} samples, at most {max_samples} a request",
        )
    return n


def _values(req: pb.ModelInferRequest, size: int) -> tuple[array.array[float], str]:
    """The input's ``size`` values as float32, and the field they came from."""
    raws = req.raw_input_contents
    tensor = req.inputs[0]
    if len(raws) > 1:
        _invalid(f"raw_input_contents: want one entry (for inputs[0]), got {len(raws)}")
    values: array.array[float] = array.array("f")
    if raws:
        if tensor.HasField("contents"):
            _invalid("inputs[0].contents: must be empty when raw_input_contents carries the data")
        raw = raws[0]
        if len(raw) != size * FLOAT32_BYTES:
            _invalid(f"raw_input_contents[0]: want {size * FLOAT32_BYTES} bytes ({size} "
                     f"little-endian float32 values), got {len(raw)}")  # fmt: skip
        values.frombytes(raw)
        if _BIG_ENDIAN:
            values.byteswap()
        return values, "raw_input_contents[0]"
    field = "inputs[0].contents.fp32_contents"
    contents = tensor.contents.fp32_contents
    if len(contents) != size:
        _invalid(f"{field}: want {size} values, got {len(contents)}")
    values.extend(contents)
    return values, field


def parse(
    req: pb.ModelInferRequest, model_name: str, sample_shape: tuple[int, ...], max_samples: int
) -> Call:
    """The call ``req`` as a model named ``model_name`` taking samples of ``sample_shape``
    serves it; a ``CallError`` otherwise."""
    if req.model_name != model_name:
        _not_found(req.model_name, model_name)
    if len(req.inputs) != 1:
        _invalid(f"inputs: want exactly one tensor, got {len(req.inputs)}")
    tensor = req.inputs[0]
    if tensor.name != INPUT:
        _invalid(f"inputs[0].name: want {quote(INPUT)}, got {quote(tensor.name)}")
    if tensor.datatype != DATATYPE:
        _invalid(f"inputs[0].datatype: wrong dtype: want {quote(DATATYPE)}, "
                 f"got {quote(tensor.datatype)}")  # fmt: skip
    for i, wanted in enumerate(req.outputs):
        if wanted.name != OUTPUT:
            _invalid(f"outputs[{i}].name: want {quote(OUTPUT)}, got {quote(wanted.name)}")
    n = _shape(tensor.shape, sample_shape, max_samples)
    values, field = _values(req, n * math.prod(sample_shape))
    inputs = torch.frombuffer(values, dtype=torch.float32).reshape(n, *sample_shape)
    if not bool(torch.isfinite(inputs).all()):
        _invalid(f"{field}: a value is NaN or infinite")
    return Call(req.id, inputs, raw=bool(req.raw_input_contents))


def _not_found(asked: str, served: str) -> NoReturn:
    raise CallError(
        grpc.StatusCode.NOT_FOUND,
        f"model_name: model {quote(asked)} is not served here, this server serves {served!r}",
    )


def answer(model_name: str, call: Call, logits: torch.Tensor) -> bytes:
    """The encoded answer: the logits, (n, outputs), as one FP32 output ``logits``, in the
    request's form (raw bytes, or ``fp32_contents``)."""
    out = pb.ModelInferResponse(model_name=model_name, id=call.id)
    tensor = out.outputs.add(name=OUTPUT, datatype=DATATYPE, shape=list(logits.shape))
    if call.raw:
        out.raw_output_contents.append(logits.numpy().astype("<f4", copy=False).tobytes())
    else:
        tensor.contents.fp32_contents.extend(logits.reshape(-1).tolist())
    return out.SerializeToString()
