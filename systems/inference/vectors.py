"""The inference pattern's requests: the load's body and gRPC request, and the test vectors
(vectors.json).

Every request is an Open Inference Protocol (KServe v2) call with one FP32 tensor named
``input`` of shape ``[n, *sample_shape]``, its data flat: over HTTP, ``POST
/v2/models/{model}/infer`` with the JSON body; over gRPC, ``ModelInfer`` with a
``ModelInferRequest`` (proto/inference/v2), written in protobuf's JSON mapping, its data in
``contents.fp32_contents`` or, raw, in ``raw_input_contents`` (little-endian float32, base64 as
the mapping writes bytes). Inputs are drawn from a fixed seed and written with 4 decimals, so
the same request is sent every time.

- ``request_body(...)``: the body the HTTP load sends (the harness's loadgen table runs
  ``python -m systems.inference.vectors --body ...`` once and sends what it prints);
  ``grpc_request(..., raw=True)``: the gRPC load's request (``--grpc-request``, the table's
  ``grpc_request_command``), the tensor as raw bytes, the form a KServe client sends;
- ``vectors.json``: cases the harness checks every implementation against before timing it,
  each over HTTP (``probes.http``) and, where the case can be written in protobuf, over gRPC
  (``probes.grpc``); the answers computed here by the model on the CPU, held within a tolerance
  (the last bits of a float32 forward pass depend on the CPU's kernels and the batch a sample
  was computed in); malformed requests get their 400, 404, 405 or 413 with the envelope, or
  their gRPC status.

    python -m systems.inference.vectors --write     # rewrite vectors.json
    python -m systems.inference.vectors --check     # exit 1 when it differs from the model's
    python -m systems.inference.vectors --body --model mlp --samples 1   # a load body
    python -m systems.inference.vectors --grpc-request --model mlp --samples 1   # a gRPC load
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
import re
import struct
import sys
from pathlib import Path
from typing import Any, Final

FILE: Final = Path(__file__).with_name("vectors.json")
#: The answers' tolerance: float32 logits of magnitude ~0.1, computed by different kernels.
TOLERANCE: Final = {"rel": 1e-3, "abs": 1e-4}
#: The request limit the vectors are written for (the system's default, vectors' params).
MAX_REQUEST_SAMPLES: Final = 64
ANY: Final = "<any-string>"
METHOD: Final = "/inference.GRPCInferenceService/ModelInfer"


def sample_shape(model: str, seq_len: int) -> list[int]:
    """One sample's shape, as systems.inference.model.Spec says (without importing torch)."""
    if model == "mlp":
        return [512]
    if model == "transformer":
        return [seq_len, 64]
    raise ValueError(f"model: {model!r} is not mlp or transformer")


def inputs(model: str, seq_len: int, samples: int, seed: int = 0) -> list[float]:
    """``samples`` samples' data, flat, uniform in [-1, 1) with 4 decimals."""
    size = samples * math.prod(sample_shape(model, seq_len))
    draw = random.Random(seed)
    return [round(draw.uniform(-1.0, 1.0), 4) for _ in range(size)]


def request_body(
    model: str, seq_len: int, samples: int, seed: int = 0, **extra: Any
) -> dict[str, Any]:
    """The request: one FP32 tensor ``input`` of ``samples`` samples (``extra`` overrides)."""
    tensor = {
        "name": "input",
        "shape": [samples, *sample_shape(model, seq_len)],
        "datatype": "FP32",
        "data": inputs(model, seq_len, samples, seed),
    }
    tensor.update(extra)
    return {"inputs": [tensor]}


def float32_bytes(values: list[float]) -> bytes:
    """``values`` as little-endian float32, flat: KServe's raw tensor contents."""
    return struct.pack(f"<{len(values)}f", *values)


def grpc_request(
    model: str, seq_len: int, samples: int, seed: int = 0, *, raw: bool = False, **extra: Any
) -> dict[str, Any]:
    """The same request as a ``ModelInferRequest`` in protobuf's JSON mapping: the data in
    ``contents.fp32_contents``, or (``raw``) in ``raw_input_contents[0]``; ``extra`` overrides
    the tensor's fields."""
    values = inputs(model, seq_len, samples, seed)
    tensor: dict[str, Any] = {
        "name": "input",
        "datatype": "FP32",
        "shape": [samples, *sample_shape(model, seq_len)],
    }
    request: dict[str, Any] = {"model_name": model, "inputs": [tensor]}
    if raw:
        request["raw_input_contents"] = [base64.b64encode(float32_bytes(values)).decode()]
    else:
        tensor["contents"] = {"fp32_contents": values}
    tensor.update(extra)
    return request


def _path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def _http(body: Any, status: int, expect: Any, path: str = _path("mlp")) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "path": path, "body": body},
        "expect": {"status": status, "body": expect},
    }


def _grpc(message: dict[str, Any], code: str, answer: Any = None) -> dict[str, Any]:
    """A gRPC exchange: the answer expected when OK, any non-empty details otherwise."""
    expect: dict[str, Any] = {"code": code}
    expect.update({"message": answer} if code == "OK" else {"details": ANY})
    return {"request": {"method": METHOD, "message": message}, "expect": expect}


def _case(name: str, **probes: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "probes": probes}


def _ok(name: str, model: str, seq_len: int, samples: int, seed: int) -> dict[str, Any]:
    import torch

    from systems.inference.model import Runner, Spec

    body = request_body(model, seq_len, samples, seed)
    spec = Spec(model, seq_len)  # type: ignore[arg-type]
    data = torch.tensor(body["inputs"][0]["data"], dtype=torch.float32)
    logits = Runner(spec, torch.device("cpu")).run(data.reshape(samples, *spec.sample_shape))
    values = [round(float(v), 6) for v in logits.flatten()]
    shape = [samples, int(logits.shape[1])]
    tensor = {"name": "logits", "shape": shape, "datatype": "FP32"}
    http = {"model_name": model, "outputs": [{**tensor, "data": values}]}
    # The JSON mapping writes int64 as strings, and leaves the empty id out.
    grpc_tensor = {**tensor, "shape": [str(d) for d in shape]}
    grpc = {
        "model_name": model,
        "outputs": [{**grpc_tensor, "contents": {"fp32_contents": values}}],
    }
    return _case(
        name,
        http=_http(body, 200, http, _path(model)),
        grpc=_grpc(grpc_request(model, seq_len, samples, seed), "OK", grpc),
    )


def _raw_ok() -> dict[str, Any]:
    """Raw bytes in, raw bytes out (their values are the fp32_contents cases' business: bytes
    cannot be held within a tolerance)."""
    tensor = {"name": "logits", "shape": ["1", "10"], "datatype": "FP32"}
    answer = {"model_name": "mlp", "id": "raw-1", "outputs": [tensor], "raw_output_contents": [ANY]}
    request = {**grpc_request("mlp", 64, 1, 3, raw=True), "id": "raw-1"}
    return _case("one sample as raw bytes", grpc=_grpc(request, "OK", answer))


def _bad(name: str, status: int, body: Any, grpc_code: str | None, message: Any = None,
         path: str = _path("mlp")) -> dict[str, Any]:  # fmt: skip
    """A refused request over HTTP, and over gRPC unless ``grpc_code`` is None."""
    code = {400: "invalid_argument", 404: "not_found", 413: "resource_exhausted"}[status]
    probes = {"http": _http(body, status, {"error": {"code": code, "message": ANY}}, path)}
    if grpc_code is not None:
        probes["grpc"] = _grpc(message, grpc_code)
    return _case(name, **probes)


def _grpc_bad(name: str, message: dict[str, Any]) -> dict[str, Any]:
    return _case(name, grpc=_grpc(message, "INVALID_ARGUMENT"))


def cases() -> list[dict[str, Any]]:
    """Every case: answers by the model, then each kind of bad input."""
    mlp = request_body("mlp", 64, 1)
    one = grpc_request("mlp", 64, 1)
    data = one["inputs"][0]["contents"]["fp32_contents"]
    short_raw = base64.b64encode(float32_bytes(data[:-1])).decode()
    over = MAX_REQUEST_SAMPLES + 1
    bad = "INVALID_ARGUMENT"
    return [
        _ok("one sample", "mlp", 64, 1, 1),
        _ok("three samples", "mlp", 64, 3, 2),
        _raw_ok(),
        _bad("datatype not FP32", 400, request_body("mlp", 64, 1, datatype="INT64"),
             bad, grpc_request("mlp", 64, 1, datatype="INT64")),
        _bad("a sample of the wrong shape", 400, request_body("mlp", 64, 1, shape=[1, 511]),
             bad, grpc_request("mlp", 64, 1, shape=[1, 511])),
        _bad("data shorter than the shape", 400,
             {"inputs": [{**mlp["inputs"][0], "data": mlp["inputs"][0]["data"][:-1]}]},
             bad, grpc_request("mlp", 64, 1, contents={"fp32_contents": data[:-1]})),
        # Protobuf carries floats only: no gRPC form.
        _bad("a string among the data", 400,
             {"inputs": [{**mlp["inputs"][0], "data": ["x", *mlp["inputs"][0]["data"][1:]]}]},
             None),
        _bad("an empty batch", 400, request_body("mlp", 64, 0), bad, grpc_request("mlp", 64, 0)),
        _bad("no inputs", 400, {"id": "x"}, bad, {"model_name": "mlp", "id": "x"}),
        # The number of samples is read from the shape, before the data is checked.
        _bad("more samples than a request may carry", 413,
             request_body("mlp", 64, 1, shape=[over, 512]),
             "RESOURCE_EXHAUSTED", grpc_request("mlp", 64, 1, shape=[over, 512])),
        _bad("another model's path", 404, mlp, "NOT_FOUND",
             {**one, "model_name": "resnet50"}, _path("resnet50")),
        # JSON has no NaN, raw bytes and fp32_contents do.
        _grpc_bad("a NaN among the data",
                  grpc_request("mlp", 64, 1, contents={"fp32_contents": ["NaN", *data[1:]]})),
        _grpc_bad("raw bytes shorter than the shape",
                  {**grpc_request("mlp", 64, 1, raw=True), "raw_input_contents": [short_raw]}),
        _grpc_bad("raw bytes and contents both",
                  {**one, "raw_input_contents": [base64.b64encode(float32_bytes(data)).decode()]}),
    ]  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "description": "inference conformance (Open Inference Protocol, KServe v2), each case "
        "over HTTP (probes.http) and where it can be written over gRPC (probes.grpc): answers "
        "by the model on the CPU (systems/inference/model.py, seed 20261129), within the "
        "tolerance; python -m systems.inference.vectors --write writes this file. "
        "'<any-string>' matches any non-empty string.",
        "params": {
            "model": "mlp",
            "max_request_samples": MAX_REQUEST_SAMPLES,
            "samples_per_request": 1,
        },
        "tolerance": TOLERANCE,
        "cases": cases(),
    }


def _dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with every list of numbers on one line (a sample is 512 of them)."""
    text = json.dumps(doc, indent=1)
    numbers = re.compile(r"\[\s*(-?[0-9][^\[\]{}\"]*?)\s*\]", re.S)
    return numbers.sub(lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vectors", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite vectors.json")
    mode.add_argument("--check", action="store_true", help="exit 1 when vectors.json differs")
    mode.add_argument("--body", action="store_true", help="print a load body")
    mode.add_argument(
        "--grpc-request",
        action="store_true",
        help="print the gRPC load's ModelInferRequest (protobuf's JSON mapping, raw bytes)",
    )
    parser.add_argument("--model", default="mlp", choices=["mlp", "transformer"])
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args(argv)
    if args.body or args.grpc_request:
        if args.samples < 1:
            parser.error(f"--samples: must be at least 1, got {args.samples}")
        if args.body:
            body = request_body(args.model, args.seq_len, args.samples)
        else:
            body = grpc_request(args.model, args.seq_len, args.samples, raw=True)
        sys.stdout.write(json.dumps(body, separators=(",", ":")))
        return 0
    text = _dumps(document())
    if args.write:
        FILE.write_text(text, encoding="utf-8")
        return 0
    if FILE.read_text(encoding="utf-8") != text:
        print(f"{FILE}: differs from the model's answers: run --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
