"""An inference request's body: read within its limit, parsed, validated, made a tensor; and the
answer's body.

The body is a subset of the Open Inference Protocol (KServe v2) that NVIDIA Triton speaks::

    {"id": "optional string", "parameters": {...ignored},
     "inputs": [{"name": "input", "shape": [n, *sample_shape], "datatype": "FP32",
                 "data": [n × prod(sample_shape) numbers, flat, row-major]}]}

Every refusal is a ``RequestError`` carrying its status and envelope: 400 ``invalid_argument``
with a message naming the field (and the expected shape where a shape is wrong), 413
``resource_exhausted`` for more samples than a request may carry or a body over ``body_limit``.
The checks run in the order the fields are listed above; the number of samples comes from the
shape, before the data is looked at. Client text quoted in a message is cut at 200 characters.

Parsing is on the event loop's hot path, so a body is first decoded by msgspec against the
request's schema (typed: a bool, a string or a null among the data fails it; about 15 µs for a
512-float sample against 50 µs for ``json.loads`` and a type check per value); only a body it
refuses is parsed again with ``json`` to say which field is wrong and how. Both paths accept
the same requests.
"""

from __future__ import annotations

import array
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import msgspec
import torch
from aiohttp import web
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError

from systems.answers import error_body

INPUT: Final = "input"
OUTPUT: Final = "logits"
DATATYPE: Final = "FP32"
#: Bytes of JSON a number may take in a body: "-0.123456789012345678, " is 23; the rest is slack
#: for exponents and spacing.
BYTES_PER_NUMBER: Final = 32
#: Bytes of a body beyond its numbers: the id, names, shape, parameters.
BODY_SLACK: Final = 4096
#: Characters of client text quoted in a message.
MAX_QUOTE: Final = 200
#: Counted (never sent) for a request whose client went away while sending its body.
CLIENT_GONE: Final = 499
_COMPACT: Final = (",", ":")
_NUMBER_TYPES: Final = frozenset({float, int})


class RequestError(Exception):
    """A refused request: its status, and the envelope; ``close`` the connection after it."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.close = status, close
        self.body = error_body(code, message)

    def response(self) -> web.Response:
        response = web.Response(status=self.status, body=self.body, content_type="application/json")
        if self.close:
            response.force_close()
        return response


def quote(value: object) -> str:
    """``value`` as JSON for a message (a string quoted), cut at ``MAX_QUOTE`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "…"


def _invalid(message: str) -> NoReturn:
    raise RequestError(400, "invalid_argument", message)


def _kind(value: object) -> str:
    """What a JSON value is, in a message's words."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


def body_limit(max_samples: int, sample_shape: Sequence[int]) -> int:
    """The largest body accepted: ``max_samples`` samples at ``BYTES_PER_NUMBER`` a number, plus
    ``BODY_SLACK``."""
    return max_samples * math.prod(sample_shape) * BYTES_PER_NUMBER + BODY_SLACK


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The body, at most ``limit`` bytes: 413 (closing the connection) by Content-Length before
    anything is read, or as soon as a body without one passes the limit."""
    too_large = RequestError(
        413, "resource_exhausted", f"body: larger than {limit} bytes", close=True
    )
    length = request.content_length
    if length is not None and length > limit:
        raise too_large
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    body = bytearray()
    try:
        while chunk := await request.content.read(limit + 1 - len(body)):
            body += chunk
            if len(body) > limit:
                raise too_large
    except (ConnectionError, ContentLengthError):  # the client went away mid-body
        raise RequestError(CLIENT_GONE, "cancelled", "the client went away", close=True) from None
    except HttpProcessingError as exc:  # e.g. a broken chunked encoding
        message = f"body: cannot be read: {exc.message}"[:MAX_QUOTE]
        raise RequestError(400, "invalid_argument", message, close=True) from None
    return bytes(body)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid request: its id (None when not given) and its samples, float32, (n, *shape)."""

    id: str | None
    inputs: torch.Tensor

    @property
    def samples(self) -> int:
        return int(self.inputs.shape[0])


def _refuse_constant(name: str) -> NoReturn:
    _invalid(f"body: {name} is not JSON (numbers must be finite)")


def _shape(tensor: dict[str, Any], sample_shape: tuple[int, ...], max_samples: int) -> int:
    """The number of samples the tensor's shape declares, checked against the model's."""
    shape = tensor.get("shape")
    want = f"[n, {', '.join(map(str, sample_shape))}]"
    if not isinstance(shape, list) or any(type(d) is not int for d in shape):
        _invalid(f"inputs[0].shape: want a list of integers {want}, got {quote(shape)}")
    if len(shape) != 1 + len(sample_shape) or tuple(shape[1:]) != sample_shape or shape[0] < 0:
        _invalid(f"inputs[0].shape: want {want}, got {quote(shape)}")
    n: int = shape[0]
    if n == 0:
        _invalid(f"inputs[0].shape: empty batch (n = 0), want {want} with n ≥ 1")
    if n > max_samples:
        raise RequestError(
            413,
            "resource_exhausted",
            f"inputs[0].shape: oversized batch: {n} samples, at most {max_samples} a request",
        )
    return n


def _data(tensor: dict[str, Any], n: int, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """The tensor's data as float32 of shape (n, *sample_shape), every value finite."""
    data = tensor.get("data")
    size = n * math.prod(sample_shape)
    if not isinstance(data, list):
        _invalid(f"inputs[0].data: want a flat list of {size} numbers, got {_kind(data)}")
    if len(data) != size:
        _invalid(
            f"inputs[0].data: want {size} numbers (shape [{n}, "
            f"{', '.join(map(str, sample_shape))}]), got {len(data)}"
        )
    # One pass over the types; bool is a subclass of int, which this refuses.
    if not set(map(type, data)) <= _NUMBER_TYPES:
        at = next(i for i, v in enumerate(data) if type(v) not in _NUMBER_TYPES)
        _invalid(f"inputs[0].data[{at}]: want a number, got {_kind(data[at])}")
    return _values(data, n, sample_shape)


def _values(data: list[float], n: int, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """Numbers already checked to be numbers, as float32 (n, *sample_shape), every one finite."""
    size = n * math.prod(sample_shape)
    if len(data) != size:
        _invalid(
            f"inputs[0].data: want {size} numbers (shape [{n}, "
            f"{', '.join(map(str, sample_shape))}]), got {len(data)}"
        )
    try:
        values = array.array("f", data)
    except OverflowError:  # an integer too large for a C float's conversion
        _invalid("inputs[0].data: a value is out of float32's range")
    inputs = torch.frombuffer(values, dtype=torch.float32).reshape(n, *sample_shape)
    if not bool(torch.isfinite(inputs).all()):
        _invalid("inputs[0].data: a value is out of float32's range (infinite as FP32)")
    return inputs


class _Tensor(msgspec.Struct):
    """A tensor of the schema; unknown fields (``parameters`` …) are ignored, as by ``parse``."""

    name: str
    datatype: str
    shape: list[int]
    data: list[float]


class _Request(msgspec.Struct):
    inputs: list[_Tensor]
    id: str | None = None


_DECODER: Final = msgspec.json.Decoder(_Request)


def parse(body: bytes, sample_shape: tuple[int, ...], max_samples: int) -> Parsed:
    """The request in ``body``, validated for a model taking samples of ``sample_shape``; a
    ``RequestError`` otherwise (its message from ``parse_slowly``)."""
    try:
        doc = _DECODER.decode(body)
    except msgspec.DecodeError:  # ValidationError included: the slow path says what is wrong
        return parse_slowly(body, sample_shape, max_samples)
    if len(doc.inputs) != 1 or doc.inputs[0].name != INPUT or doc.inputs[0].datatype != DATATYPE:
        return parse_slowly(body, sample_shape, max_samples)
    tensor = doc.inputs[0]
    n = _shape({"shape": tensor.shape}, sample_shape, max_samples)
    return Parsed(doc.id, _values(tensor.data, n, sample_shape))


def parse_slowly(body: bytes, sample_shape: tuple[int, ...], max_samples: int) -> Parsed:
    """``parse`` with ``json`` and a check per field, naming the first that is wrong."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except RequestError:
        raise
    # Not UTF-8, not JSON, nested too deep, an integer literal past Python's digit limit.
    except (ValueError, RecursionError) as exc:
        _invalid(f"body: not JSON: {quote(str(exc))}")
    if not isinstance(doc, dict):
        _invalid(f"body: want a JSON object, got {_kind(doc)}")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        _invalid(f"id: want a string, got {_kind(request_id)}")
    inputs = doc.get("inputs")
    if inputs is None:
        _invalid("inputs: missing, want a list of one tensor")
    if not isinstance(inputs, list) or len(inputs) != 1:
        got = f"{len(inputs)} tensors" if isinstance(inputs, list) else _kind(inputs)
        _invalid(f"inputs: want a list of exactly one tensor, got {got}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        _invalid(f"inputs[0]: want a tensor (an object), got {_kind(tensor)}")
    if tensor.get("name") != INPUT:
        _invalid(f"inputs[0].name: want {quote(INPUT)}, got {quote(tensor.get('name'))}")
    if tensor.get("datatype") != DATATYPE:
        got = quote(tensor.get("datatype"))
        _invalid(f"inputs[0].datatype: wrong dtype: want {quote(DATATYPE)}, got {got}")
    n = _shape(tensor, sample_shape, max_samples)
    return Parsed(request_id, _data(tensor, n, sample_shape))


def answer_body(model_name: str, request_id: str | None, logits: torch.Tensor) -> bytes:
    """The 200 answer: the logits, (n, outputs), as one FP32 tensor ``logits``, data flat."""
    answer: dict[str, Any] = {"model_name": model_name}
    if request_id is not None:
        answer["id"] = request_id
    answer["outputs"] = [
        {
            "name": OUTPUT,
            "shape": list(logits.shape),
            "datatype": DATATYPE,
            "data": logits.reshape(-1).tolist(),
        }
    ]
    return json.dumps(answer, separators=_COMPACT, ensure_ascii=False).encode()
