"""What the inference pattern's two fronts share (HTTP, ``service``; gRPC, ``grpc_service``): the
command line, the device and torch's threads, and the model behind either front.

``parse_args`` gives the validated ``Config`` (``--metrics-listen`` for the gRPC front only);
``prepare`` picks the device and sets torch's threads before any parallel work; ``Backend`` is
the forward thread, the ``Engine`` built and warmed on it (``build_engine``), and the ``Batcher``
that feeds it, with what served as ``inference_device_info``'s labels. Nothing here knows either
wire format.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Final

import torch

from systems import serving
from systems.http_limits import SetupError
from systems.inference import model
from systems.inference.accel import Engine, describe
from systems.inference.batcher import POLICIES, Batcher, Limits, Policy
from systems.inference.metrics import Metrics

MAX_BATCH: Final = 1024
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")
_FLAGS: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line; ``metrics_*`` only for the gRPC front (else ``""`` and 0)."""

    host: str
    port: int
    policy: Policy
    spec: model.Spec
    device: str
    threads: int
    max_batch_size: int
    max_queue_delay_us: int
    queue: int
    max_request_samples: int
    cuda_graphs: bool
    compile: bool
    metrics_host: str = ""
    metrics_port: int = 0

    @property
    def max_rows(self) -> int:
        """The most samples one forward pass computes (the largest bucket)."""
        return self.max_batch_size if self.policy == "dynamic" else self.max_request_samples

    @property
    def mode(self) -> str:
        parts = ["compile"] * self.compile + ["cuda-graphs"] * self.cuda_graphs
        return "+".join(parts) or "eager"


def _flag(text: str) -> bool:
    value = _FLAGS.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"want true or false, got {text!r}")
    return value


def _device(text: str) -> str:
    if _DEVICE.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"want auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def parse_args(
    prog: str,
    description: str | None,
    argv: Sequence[str] | None,
    *,
    default_port: int,
    metrics: bool = False,
) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser(prog, description)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", default_port))
    if metrics:
        p.add_argument("--metrics-listen", type=serving.parse_listen, default=("127.0.0.1", 9464))
    p.add_argument("--policy", choices=POLICIES, required=True)
    p.add_argument("--model", choices=model.MODELS, default="mlp")
    seq_lens = model.SEQ_LENS
    p.add_argument("--seq-len", type=serving.int_in(seq_lens.start, seq_lens.stop - 1), default=64)
    p.add_argument("--device", type=_device, default="auto")
    p.add_argument("--threads", type=serving.int_in(0, 1024), default=0)
    p.add_argument("--max-batch-size", type=serving.int_in(1, MAX_BATCH), default=128)
    p.add_argument("--max-queue-delay-us", type=serving.int_in(0, 10_000_000), default=2000)
    p.add_argument("--queue", type=serving.int_in(1, 1_000_000), default=256)
    p.add_argument("--max-request-samples", type=serving.int_in(1, MAX_BATCH), default=64)
    for name in ("--cuda-graphs", "--compile"):
        p.add_argument(name, type=_flag, nargs="?", const=True, default=False, metavar="BOOL")
    a = p.parse_args(argv)
    if a.policy == "dynamic" and a.max_request_samples > a.max_batch_size:
        p.error(
            f"argument --max-request-samples: {a.max_request_samples} is more than "
            f"--max-batch-size {a.max_batch_size} (a request is never split)"
        )
    metrics_listen: tuple[str, int] = a.metrics_listen if metrics else ("", 0)
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        policy=a.policy,
        spec=model.Spec(a.model, a.seq_len),
        device=a.device,
        threads=model.forward_threads(a.threads),
        max_batch_size=a.max_batch_size,
        max_queue_delay_us=a.max_queue_delay_us,
        queue=a.queue,
        max_request_samples=a.max_request_samples,
        cuda_graphs=a.cuda_graphs,
        compile=a.compile,
        metrics_host=metrics_listen[0],
        metrics_port=metrics_listen[1],
    )


def prepare(prog: str, config: Config) -> tuple[torch.device, Config] | None:
    """The device to serve on and the configuration as it will serve, torch's threads set;
    None (after one line on stderr) when the device cannot be used: the caller exits 1.

    ``--cuda-graphs`` with ``--device cpu`` asks for the impossible and is refused; with
    ``--device auto`` on a machine without CUDA (the gpu profile's CPU fallback) the server
    runs eager, says so in one line, and its ``inference_device_info`` shows ``mode="eager"``.
    """
    try:
        device = model.pick_device(config.device)
    except model.ModelError as exc:
        print(f"{prog}: refusing to start: {exc}", file=sys.stderr)
        return None
    if config.cuda_graphs and device.type != "cuda":
        if config.device != "auto":
            print(f"{prog}: refusing to start: --cuda-graphs needs a CUDA device, the device "
                  f"is {device}", file=sys.stderr)  # fmt: skip
            return None
        print(f"{prog}: no CUDA device: --cuda-graphs has no effect, serving on the CPU",
              file=sys.stderr)  # fmt: skip
        config = replace(config, cuda_graphs=False)
    # Before any parallel work: afterwards torch refuses to change the inter-op pool.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(config.threads)
    return device, config


def build_engine(config: Config, device: torch.device) -> Engine:
    """Load the model on ``device`` and warm it up (call on the forward thread)."""
    runner = model.Runner(config.spec, device, threads=config.threads)
    engine = Engine(
        runner.model,
        device,
        config.spec.sample_shape,
        config.max_rows,
        cuda_graphs=config.cuda_graphs,
        compile=config.compile,
    )
    engine.warm_up()
    return engine


class Backend:
    """The model behind a front: one forward thread, its engine, and the batcher feeding it.
    Make it on the loop; ``start()`` warms the engine up on the thread and starts the batcher;
    ``stop()`` answers what is queued or in a pass, then ends the thread."""

    def __init__(self, config: Config, device: torch.device) -> None:
        self._config, self._device = config, device
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference-forward")
        self._engines: list[Engine] = []  # the one engine, once built on the forward thread
        limits = Limits(
            config.policy, config.max_batch_size, config.max_queue_delay_us / 1e6, config.queue
        )
        self.batcher: Batcher[torch.Tensor, torch.Tensor] = Batcher(
            self._forward, limits, self._executor
        )
        #: What serves, as ``inference_device_info``'s labels.
        self.info = {
            "device": describe(device),
            "torch": torch.__version__,
            "cuda": torch.version.cuda or "none",
            "model": config.spec.name,
            "policy": config.policy,
            "threads": str(config.threads),
            "mode": config.mode,
        }

    def _forward(self, parts: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        return self._engines[0](parts)

    async def start(self) -> None:
        """Build and warm the engine on the forward thread, then start forming batches;
        SetupError (one line) when the warm-up fails."""
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(
                self._executor, build_engine, self._config, self._device
            )
        except Exception as exc:  # e.g. a CUDA graph that cannot be captured
            line = (str(exc).splitlines() or [""])[0][:300]
            message = f"refusing to start: warm-up failed: {type(exc).__name__}: {line}"
            raise SetupError(message) from None
        self._engines.append(engine)
        self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()


class ModelFront:
    """What both fronts (HTTP and gRPC) hold: the batcher they feed, the metrics they count in
    (``in_flight`` read at scrape time), the limits of a request, and the last forward-pass
    failure logged, so that a failed pass is one line in the log, not one per request."""

    def __init__(
        self,
        prog: str,
        config: Config,
        batcher: Batcher[torch.Tensor, torch.Tensor],
        info: dict[str, str],
    ) -> None:
        self.in_flight = 0
        self.metrics = Metrics(
            in_flight=lambda: self.in_flight, queue_depth=lambda: batcher.depth, info=info
        )
        self._http = self.metrics.http
        self._batcher = batcher
        self._prog = prog
        self._model = config.spec.name
        self._shape = config.spec.sample_shape
        self._max_samples = config.max_request_samples
        self._last_failure: BaseException | None = None

    def failed(self, exc: BaseException) -> None:
        """Log a failed forward pass once, whichever of its requests reports it first."""
        if exc is not self._last_failure:
            self._last_failure = exc
            line = str(exc).splitlines()[0] if str(exc) else ""
            print(f"{self._prog}: forward pass failed: {type(exc).__name__}: {line[:200]}",
                  file=sys.stderr, flush=True)  # fmt: skip
