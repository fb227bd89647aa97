"""The inference pattern's models: small but real PyTorch networks, deterministic, never downloaded.

Two models, chosen by name:

- ``mlp``: 512 → 1024 → 1024 → 10 with ReLU; an input is 512 floats, an output 10 logits.
- ``transformer``: a tiny encoder (``d_model`` 64, 4 heads, 2 layers, feed-forward 128) over a
  sequence of ``seq_len`` (32 … 128) vectors of 64 floats, mean-pooled to 10 logits.

Weights are made from a fixed seed the first time a model is asked for, saved with torch's own
serialization (``torch.save`` of the state dict) to the cache folder (``PATTERNBENCH_MODEL_CACHE``,
default ``~/.cache/patternbench/models``) and loaded from there afterwards with
``weights_only=True``: every process of every implementation serves the same weights, bit for
bit, without a network. A file that does not load is made again.

Inference runs in ``torch.inference_mode()`` on a model in ``eval()``. On the CPU the intra-op
threads follow the CPUs the process may run on (the harness pins it); on CUDA, inputs come from
pinned host memory with ``non_blocking=True``. ``pick_device`` is the one place that chooses:
``auto`` is CUDA when present, else the CPU.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import torch
from torch import nn

ModelName = Literal["mlp", "transformer"]
MODELS: Final = ("mlp", "transformer")
SEED: Final = 20261129
OUTPUTS: Final = 10
MLP_INPUT: Final = 512
MLP_HIDDEN: Final = 1024
D_MODEL: Final = 64
HEADS: Final = 4
LAYERS: Final = 2
FEED_FORWARD: Final = 128
SEQ_LENS: Final = range(32, 129)
CACHE_ENV: Final = "PATTERNBENCH_MODEL_CACHE"


class ModelError(Exception):
    """A model, device or input that cannot be used; the message is one line."""


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(MLP_INPUT, MLP_HIDDEN),
            nn.ReLU(),
            nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
            nn.ReLU(),
            nn.Linear(MLP_HIDDEN, OUTPUTS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class TinyEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            D_MODEL, HEADS, dim_feedforward=FEED_FORWARD, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(D_MODEL, OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(x).mean(dim=1))
        return out


@dataclass(frozen=True)
class Spec:
    """A model and the shape of one sample it takes."""

    name: ModelName
    seq_len: int = 64

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise ModelError(f"model: {self.name!r} is not one of {', '.join(MODELS)}")
        if self.name == "transformer" and self.seq_len not in SEQ_LENS:
            raise ModelError(f"seq_len: must be {SEQ_LENS.start} to {SEQ_LENS.stop - 1}, "
                             f"got {self.seq_len}")  # fmt: skip

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (MLP_INPUT,) if self.name == "mlp" else (self.seq_len, D_MODEL)

    @property
    def file_name(self) -> str:
        # The transformer's weights do not depend on the sequence length.
        return f"{self.name}-seed{SEED}-torch{torch.__version__.split('+')[0]}.pt"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "patternbench" / "models")


def _build(name: ModelName) -> nn.Module:
    """The model with its weights drawn from SEED, on the CPU (the same bits on every machine:
    torch's CPU generator is deterministic for a seed)."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(SEED)
        return Mlp() if name == "mlp" else TinyEncoder()
    finally:
        torch.random.set_rng_state(generator_state)


def load(spec: Spec, folder: Path | None = None) -> nn.Module:
    """The model in eval(), on the CPU, its weights from the cache (made and saved if absent)."""
    folder = folder or cache_dir()
    path = folder / spec.file_name
    model = _build(spec.name)
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass  # a partial or foreign file: made again below
    folder.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file and renamed: a concurrent reader never sees half a file.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as out:
        torch.save(model.state_dict(), out)
    os.replace(out.name, path)
    return model.eval()


def pick_device(wanted: str, cuda_available: bool | None = None) -> torch.device:
    """`auto`: CUDA when present, else the CPU; `cpu`; `cuda` or `cuda:N` (refused without one)."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if wanted == "auto":
        return torch.device("cuda:0" if available else "cpu")
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted == "cuda" or wanted.startswith("cuda:"):
        if not available:
            raise ModelError(f"device: {wanted} asked for, but torch finds no CUDA device")
        return torch.device("cuda:0" if wanted == "cuda" else wanted)
    raise ModelError(f"device: {wanted!r} is not auto, cpu, cuda or cuda:N")


def cpu_threads() -> int:
    """The intra-op threads for the CPUs this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def forward_threads(requested: int) -> int:
    """The intra-op threads a server's forward passes use: ``requested`` when above 0, else
    (auto) the CPUs this process may run on less one, which the event loop keeps (at least 1).

    The inference servers and the studies that measure a forward pass "on the same threads"
    both take their count from here.
    """
    return requested if requested > 0 else max(1, cpu_threads() - 1)


def example(spec: Spec, batch: int, seed: int = 0) -> torch.Tensor:
    """A deterministic batch of inputs (uniform in [-1, 1)), for vectors and studies."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *spec.sample_shape), generator=generator) * 2 - 1


class Runner:
    """A loaded model on its device: `run(batch)` returns the logits on the CPU."""

    def __init__(
        self,
        spec: Spec,
        device: torch.device,
        folder: Path | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        """``threads``: torch's intra-op threads (process-wide); None: ``cpu_threads()`` on the
        CPU, left as they are on CUDA."""
        self.spec = spec
        self.device = device
        if threads is not None:
            torch.set_num_threads(threads)
        elif device.type == "cpu":
            torch.set_num_threads(cpu_threads())
        self.model = load(spec, folder).to(device)

    def run(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of a batch shaped (n, *sample_shape), float32; on CUDA the input goes from
        pinned memory without blocking and the result comes back when it is ready."""
        if inputs.dtype != torch.float32 or tuple(inputs.shape[1:]) != self.spec.sample_shape:
            raise ModelError(
                f"input: want float32 of shape (n, {', '.join(map(str, self.spec.sample_shape))}),"
                f" got {inputs.dtype} {tuple(inputs.shape)}"
            )
        if not torch.isfinite(inputs).all():
            raise ModelError("input: NaN or infinite values")
        with torch.inference_mode():
            if self.device.type == "cuda":
                staged = inputs.pin_memory().to(self.device, non_blocking=True)
                logits: torch.Tensor = self.model(staged)
                return logits.to("cpu")
            out: torch.Tensor = self.model(inputs)
            return out


def flops_per_sample(spec: Spec) -> float:
    """Multiply-adds × 2 of one sample's forward pass (dense layers and attention), for the
    report's arithmetic intensity."""
    if spec.name == "mlp":
        return 2.0 * (MLP_INPUT * MLP_HIDDEN + MLP_HIDDEN * MLP_HIDDEN + MLP_HIDDEN * OUTPUTS)
    n = spec.seq_len
    per_layer = 4 * n * D_MODEL * D_MODEL + 2 * n * n * D_MODEL + 2 * n * D_MODEL * FEED_FORWARD
    return 2.0 * (LAYERS * per_layer + D_MODEL * OUTPUTS)
