"""The inference pattern's requests: the load's body, and the test vectors (vectors.json).

Every request is an Open Inference Protocol (KServe v2) call, ``POST /v2/models/{model}/infer``
with one FP32 tensor named ``input`` of shape ``[n, *sample_shape]``, its data flat. Inputs are
drawn from a fixed seed and written with 4 decimals, so the same text is sent every time.

- ``request_body(...)``: the body the load sends (the harness's loadgen table runs
  ``python -m systems.inference.vectors --body ...`` once and sends what it prints);
- ``vectors.json``: cases the harness checks every implementation against before timing it, the
  answers computed here by the model on the CPU, held within a tolerance (the last bits of a
  float32 forward pass depend on the CPU's kernels and the batch a sample was computed in);
  malformed requests get their 400, 404, 405 or 413 with the envelope.

    python -m systems.inference.vectors --write     # rewrite vectors.json
    python -m systems.inference.vectors --check     # exit 1 when it differs from the model's
    python -m systems.inference.vectors --body --model mlp --samples 1   # a load body
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from pathlib import Path
from typing import Any, Final

FILE: Final = Path(__file__).with_name("vectors.json")
#: The answers' tolerance: float32 logits of magnitude ~0.1, computed by different kernels.
TOLERANCE: Final = {"rel": 1e-3, "abs": 1e-4}
#: The request limit the vectors are written for (the system's default, vectors' params).
MAX_REQUEST_SAMPLES: Final = 64
ANY: Final = "<any-string>"


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


def _path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def _ok(name: str, model: str, seq_len: int, samples: int, seed: int) -> dict[str, Any]:
    import torch

    from systems.inference.model import Runner, Spec

    body = request_body(model, seq_len, samples, seed)
    spec = Spec(model, seq_len)  # type: ignore[arg-type]
    data = torch.tensor(body["inputs"][0]["data"], dtype=torch.float32)
    logits = Runner(spec, torch.device("cpu")).run(data.reshape(samples, *spec.sample_shape))
    expect = {
        "model_name": model,
        "outputs": [
            {
                "name": "logits",
                "shape": [samples, logits.shape[1]],
                "datatype": "FP32",
                "data": [round(float(v), 6) for v in logits.flatten()],
            }
        ],
    }
    return {
        "name": name,
        "request": {"method": "POST", "path": _path(model), "body": body},
        "expect": {"status": 200, "body": expect},
    }


def _bad(name: str, status: int, code: str, body: Any, path: str = _path("mlp")) -> dict[str, Any]:
    return {
        "name": name,
        "request": {"method": "POST", "path": path, "body": body},
        "expect": {"status": status, "body": {"error": {"code": code, "message": ANY}}},
    }


def cases() -> list[dict[str, Any]]:
    """Every case: answers by the model, then each kind of bad input."""
    mlp = request_body("mlp", 64, 1)
    over = MAX_REQUEST_SAMPLES + 1
    return [
        _ok("one sample", "mlp", 64, 1, 1),
        _ok("three samples", "mlp", 64, 3, 2),
        _bad("datatype not FP32", 400, "invalid_argument",
             request_body("mlp", 64, 1, datatype="INT64")),
        _bad("a sample of the wrong shape", 400, "invalid_argument",
             request_body("mlp", 64, 1, shape=[1, 511])),
        _bad("data shorter than the shape", 400, "invalid_argument",
             {"inputs": [{**mlp["inputs"][0], "data": mlp["inputs"][0]["data"][:-1]}]}),
        _bad("a string among the data", 400, "invalid_argument",
             {"inputs": [{**mlp["inputs"][0], "data": ["x", *mlp["inputs"][0]["data"][1:]]}]}),
        _bad("an empty batch", 400, "invalid_argument",
             request_body("mlp", 64, 0)),
        _bad("no inputs", 400, "invalid_argument", {"id": "x"}),
        # The number of samples is read from the shape, before the data is checked.
        _bad("more samples than a request may carry", 413, "resource_exhausted",
             request_body("mlp", 64, 1, shape=[over, 512])),
        _bad("another model's path", 404, "not_found", mlp, _path("resnet50")),
    ]  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "description": "inference conformance (Open Inference Protocol, KServe v2): answers by "
        "the model on the CPU (systems/inference/model.py, seed 20261129), within the "
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
    parser.add_argument("--model", default="mlp", choices=["mlp", "transformer"])
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args(argv)
    if args.body:
        if args.samples < 1:
            parser.error(f"--samples: must be at least 1, got {args.samples}")
        body = request_body(args.model, args.seq_len, args.samples)
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
