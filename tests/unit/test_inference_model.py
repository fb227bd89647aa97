"""The inference pattern's models: deterministic weights from a seed, cached and loaded back bit for
bit, the device choice, and inputs refused with one line (real torch on small inputs, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from systems.inference import model as m


@pytest.mark.parametrize("spec", [m.Spec("mlp"), m.Spec("transformer", seq_len=32)])
def test_weights_are_made_once_then_loaded_from_the_cache(spec: m.Spec, tmp_path: Path) -> None:
    first = m.load(spec, tmp_path)
    path = tmp_path / spec.file_name
    saved = torch.load(path, weights_only=True)
    for name, tensor in first.state_dict().items():
        assert torch.equal(saved[name], tensor), name
    assert not first.training
    # What is in the cache is what loads (not weights drawn again from the seed).
    torch.save({k: torch.zeros_like(v) for k, v in saved.items()}, path)
    again = m.load(spec, tmp_path)
    assert all(not t.any() for t in again.state_dict().values())


def test_a_file_that_does_not_load_is_made_again(tmp_path: Path) -> None:
    spec = m.Spec("mlp")
    path = tmp_path / spec.file_name
    path.write_bytes(b"not a state dict")
    model = m.load(spec, tmp_path)
    reference = m.load(spec, tmp_path / "fresh")
    key = "layers.0.weight"
    assert torch.equal(model.state_dict()[key], reference.state_dict()[key])
    assert torch.equal(torch.load(path, weights_only=True)[key], reference.state_dict()[key])


def test_the_same_inputs_give_the_same_logits_in_any_batch(tmp_path: Path) -> None:
    runner = m.Runner(m.Spec("mlp"), torch.device("cpu"), tmp_path)
    batch = m.example(runner.spec, 8)
    whole = runner.run(batch)
    assert whole.shape == (8, m.OUTPUTS)
    one = torch.cat([runner.run(batch[i : i + 1]) for i in range(8)])
    torch.testing.assert_close(one, whole, rtol=1e-5, atol=1e-5)
    assert torch.equal(runner.run(batch), whole)


def test_the_transformer_takes_a_sequence_per_sample(tmp_path: Path) -> None:
    spec = m.Spec("transformer", seq_len=40)
    runner = m.Runner(spec, torch.device("cpu"), tmp_path)
    assert runner.run(m.example(spec, 3)).shape == (3, m.OUTPUTS)
    assert spec.sample_shape == (40, m.D_MODEL)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (torch.zeros(2, 511), r"want float32 of shape \(n, 512\), got torch.float32 \(2, 511\)"),
        (torch.zeros(2, 512, dtype=torch.float64), "got torch.float64"),
        (torch.full((1, 512), float("nan")), "NaN or infinite"),
        (torch.full((1, 512), float("inf")), "NaN or infinite"),
    ],
)
def test_bad_inputs_are_one_line(tmp_path: Path, inputs: torch.Tensor, message: str) -> None:
    runner = m.Runner(m.Spec("mlp"), torch.device("cpu"), tmp_path)
    with pytest.raises(m.ModelError, match=message):
        runner.run(inputs)


def test_auto_picks_cuda_only_when_present() -> None:
    assert m.pick_device("auto", cuda_available=True) == torch.device("cuda:0")
    assert m.pick_device("auto", cuda_available=False) == torch.device("cpu")
    assert m.pick_device("cuda:1", cuda_available=True) == torch.device("cuda:1")
    with pytest.raises(m.ModelError, match="no CUDA device"):
        m.pick_device("cuda", cuda_available=False)
    with pytest.raises(m.ModelError, match="is not auto, cpu, cuda or cuda:N"):
        m.pick_device("tpu", cuda_available=False)


def test_bad_specs_are_one_line() -> None:
    with pytest.raises(m.ModelError, match="is not one of mlp, transformer"):
        m.Spec("resnet")  # type: ignore[arg-type]
    with pytest.raises(m.ModelError, match="seq_len: must be 32 to 128, got 16"):
        m.Spec("transformer", seq_len=16)


def test_flops_grow_with_the_sequence() -> None:
    assert m.flops_per_sample(m.Spec("mlp")) == 2.0 * (512 * 1024 + 1024 * 1024 + 1024 * 10)
    assert m.flops_per_sample(m.Spec("transformer", 128)) > m.flops_per_sample(
        m.Spec("transformer", 32)
    )


def test_forward_threads_leave_one_cpu_to_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert m.forward_threads(0) == 3
    assert m.forward_threads(2) == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {5})
    assert m.forward_threads(0) == 1


def test_the_runner_takes_the_threads_asked_for(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        m.Runner(m.Spec("mlp"), torch.device("cpu"), tmp_path, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
