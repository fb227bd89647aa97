"""The forward pass's pieces that do not need a GPU: batch-size buckets, padding, staging, the
timer choice, and the engine on the CPU (a tiny model), padded or not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from systems.inference import accel


def test_buckets_are_powers_of_two_up_to_the_max_and_the_max() -> None:
    assert accel.bucket_sizes(128) == (1, 2, 4, 8, 16, 32, 64, 128)
    assert accel.bucket_sizes(100) == (1, 2, 4, 8, 16, 32, 64, 100)
    assert accel.bucket_sizes(1) == (1,)
    assert accel.bucket_sizes(3) == (1, 2, 3)
    with pytest.raises(ValueError, match="at least 1"):
        accel.bucket_sizes(0)


@pytest.mark.parametrize(("rows", "bucket"), [(1, 1), (2, 2), (3, 4), (33, 64), (65, 100)])
def test_a_batch_goes_to_the_nearest_bucket_that_holds_it(rows: int, bucket: int) -> None:
    assert accel.bucket_for(rows, accel.bucket_sizes(100)) == bucket


@pytest.mark.parametrize("rows", [0, 101])
def test_no_bucket_holds_an_empty_or_too_large_batch(rows: int) -> None:
    with pytest.raises(ValueError, match="no bucket holds it"):
        accel.bucket_for(rows, accel.bucket_sizes(100))


def test_padding_appends_zero_rows() -> None:
    batch = torch.ones(3, 2, 5)
    padded = accel.pad_rows(batch, 4)
    assert padded.shape == (4, 2, 5)
    assert torch.equal(padded[:3], batch)
    assert not padded[3].any()
    assert accel.pad_rows(batch, 3) is batch
    with pytest.raises(ValueError, match="cannot pad 3 rows to 2"):
        accel.pad_rows(batch, 2)


def test_staging_concatenates_and_zeroes_the_rows_left_over() -> None:
    staging = accel.Staging(8, (2,), pinned=False)
    staging.buffer.fill_(7.0)  # what an earlier, larger batch left
    parts = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0], [5.0, 6.0]])]
    filled = staging.fill(parts, 4)
    assert torch.equal(filled, torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="at most 8"):
        staging.fill([torch.zeros(9, 2)], 9)


def test_the_cpu_is_timed_by_the_host_clock() -> None:
    timer = accel.timer_for(torch.device("cpu"))
    assert isinstance(timer, accel.HostTimer)
    timer.begin()
    timer.end()
    assert timer.seconds() >= 0.0
    assert accel.describe(torch.device("cpu")) == "cpu"


class Recorder(nn.Module):
    """A linear layer that records the batch sizes it was given."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 3)
        self.rows: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(int(x.shape[0]))
        out: torch.Tensor = self.linear(x)
        return out


def test_the_engine_splits_a_batch_back_to_its_requests() -> None:
    model = Recorder().eval()
    engine = accel.Engine(model, torch.device("cpu"), (4,), 8)
    parts = [torch.randn(1, 4), torch.randn(3, 4)]
    outputs, seconds = engine(parts)
    assert [o.shape for o in outputs] == [(1, 3), (3, 3)]
    with torch.inference_mode():
        expected = model.linear(torch.cat(parts))
    torch.testing.assert_close(torch.cat(outputs), expected)
    assert seconds >= 0.0
    assert model.rows == [4]


def test_a_bucketed_engine_pads_and_drops_the_padded_outputs() -> None:
    model = Recorder().eval()
    engine = accel.Engine(model, torch.device("cpu"), (4,), 8)
    engine.buckets = accel.bucket_sizes(8)  # as --compile sets them, without compiling
    parts = [torch.randn(2, 4), torch.randn(3, 4)]
    outputs, _ = engine(parts)
    assert model.rows == [8]
    assert [o.shape for o in outputs] == [(2, 3), (3, 3)]
    with torch.inference_mode():
        expected = model.linear(torch.cat(parts))
    torch.testing.assert_close(torch.cat(outputs), expected)


def test_warm_up_runs_batch_one_and_the_largest() -> None:
    model = Recorder().eval()
    accel.Engine(model, torch.device("cpu"), (4,), 5).warm_up()
    assert sorted(set(model.rows)) == [1, 5]


def test_cuda_graphs_are_refused_on_the_cpu() -> None:
    with pytest.raises(ValueError, match="--cuda-graphs needs a CUDA device, the device is cpu"):
        accel.Engine(Recorder(), torch.device("cpu"), (4,), 8, cuda_graphs=True)
