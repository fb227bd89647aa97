"""The raw ceiling of the inference pattern's model: samples/s of one forward pass per batch size,
in this process, with no server, queue or network in the way.

Run from the repository root with the project's venv (the harness pins it to the system's CPUs,
bench/studies/ceiling.py)::

    .venv/bin/python scenarios/torch_benchmark/bm_ceiling.py --model mlp --seq-len 64 \\
        --device auto --threads 0 --batch-sizes 1,2,4,8,16,32,64,128,256,512 --min-run-time 0.3

The model is loaded as the servers load it (systems/inference/model.py: ``Runner`` on the device
``pick_device`` chooses), and a batch is timed through ``accel.Engine``, the servers' own forward
pass (eager, no buckets): on CUDA that is the copy from its pinned staging buffer, the forward
pass and the copy of the logits back. Each batch size is warmed up, then timed by
``torch.utils.benchmark.Timer.blocked_autorange`` (it synchronises CUDA around every block, so
no host timer races asynchronous work) for at least ``--min-run-time`` seconds; every block's
time per batch is kept, as samples/s, for the harness's interval.

``--threads`` is the forward pass's intra-op threads by the servers' own rule
(``model.forward_threads``): 0 is one fewer than the CPUs this process may run on (at least one).

It prints one JSON object::

    {"device": "cpu" | "cuda:0 (NAME)", "torch": "2.x", "cuda": "12.x" | null, "threads": n,
     "model": "mlp", "seq_len": 64, "flops_per_sample": f,
     "points": [{"batch": b, "samples_per_s": [per block ...], "median_s_per_batch": s}, ...]}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch
from torch.utils.benchmark import Timer

from systems.inference import model as models
from systems.inference.accel import Engine, describe

#: Untimed forward passes of each batch size before its timing (allocator, kernels, caches).
WARM_UP = 3


def batch_sizes(text: str) -> list[int]:
    """`"1,2,4"` as distinct batch sizes of 1 or more, ascending."""
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole numbers: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be 1 or more: {text!r}")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=models.MODELS, default="mlp")
    p.add_argument("--seq-len", type=int, default=64, help="the transformer's sequence length")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads; 0: CPUs − 1")
    p.add_argument("--batch-sizes", type=batch_sizes, default=batch_sizes("1,8,64"))
    p.add_argument("--min-run-time", type=float, default=0.3, help="seconds per batch size")
    return p


def measure(engine: Engine, spec: models.Spec, batch: int, threads: int, min_run_time: float
            ) -> dict[str, Any]:  # fmt: skip
    """One batch size: the samples/s of every block, and the median time of one batch."""
    parts = [models.example(spec, batch)]
    for _ in range(WARM_UP):
        engine(parts)
    timer = Timer(
        stmt="engine(parts)",
        globals={"engine": engine, "parts": parts},
        num_threads=threads,
        label="raw ceiling",
        description=f"batch {batch}",
    )
    found = timer.blocked_autorange(min_run_time=min_run_time)
    return {
        "batch": batch,
        "samples_per_s": [batch / t for t in found.times if t > 0],
        "median_s_per_batch": found.median,
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        spec = models.Spec(args.model, seq_len=args.seq_len)
        device = models.pick_device(args.device)
    except models.ModelError as e:
        print(f"bm_ceiling: {e}", file=sys.stderr)
        return 2
    threads = models.forward_threads(args.threads)
    runner = models.Runner(spec, device, threads=threads)
    engine = Engine(runner.model, device, spec.sample_shape, max(args.batch_sizes))
    points = [measure(engine, spec, b, threads, args.min_run_time) for b in args.batch_sizes]
    print(
        json.dumps(
            {
                "device": describe(device),
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "threads": threads,
                "model": spec.name,
                "seq_len": spec.seq_len,
                "flops_per_sample": models.flops_per_sample(spec),
                "points": points,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
