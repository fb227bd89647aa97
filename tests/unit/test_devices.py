"""Which GPU a process that asked for one gets, from nvidia-smi's answer."""

from __future__ import annotations

from bench.launch.devices import VISIBLE, Gpu, assign, parse_nvidia_smi


def test_nvidia_smi_lines_become_gpus() -> None:
    text = "0, NVIDIA H200\n1, NVIDIA H200\n\nNo devices were found\n"
    assert parse_nvidia_smi(text) == [Gpu(0, "NVIDIA H200"), Gpu(1, "NVIDIA H200")]


def test_one_gpu_to_who_asked_none_to_the_rest() -> None:
    gpus = [Gpu(2, "NVIDIA H200"), Gpu(3, "NVIDIA H200")]
    assert assign(True, gpus) == ({VISIBLE: "2"}, "cuda:0 (NVIDIA H200; physical GPU 2)")
    assert assign(False, gpus) == ({VISIBLE: ""}, None)
    assert assign(True, []) == ({VISIBLE: ""}, "cpu")
