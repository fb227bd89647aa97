"""Accelerators: which GPUs this machine has, and what a process that asked for one is given.

An implementation (or support process) with `gpu = true` gets one device through
`CUDA_VISIBLE_DEVICES` when the machine has one, and an empty list otherwise, so that its CUDA
code path and CPU fallback are chosen by the hardware, not by the code; every other process gets
an empty list too, so none takes a GPU it did not ask for. The result records which it was.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

VISIBLE = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str

    def describe(self) -> str:
        return f"cuda:0 ({self.name}; physical GPU {self.index})"


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=index,name --format=csv,noheader` lines → GPUs."""
    gpus: list[Gpu] = []
    for line in text.splitlines():
        index, _, name = line.partition(",")
        if index.strip().isdigit() and name.strip():
            gpus.append(Gpu(int(index), name.strip()))
    return gpus


def find_gpus() -> list[Gpu]:
    """The machine's NVIDIA GPUs; none when nvidia-smi is absent or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=index,name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(done.stdout)


def assign(asked: bool, gpus: list[Gpu]) -> tuple[dict[str, str], str | None]:
    """The environment of a process and, when it asked for a GPU, the device it got."""
    if not asked:
        return {VISIBLE: ""}, None
    if not gpus:
        return {VISIBLE: ""}, "cpu"
    return {VISIBLE: str(gpus[0].index)}, gpus[0].describe()
