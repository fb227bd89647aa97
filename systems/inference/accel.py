"""The forward pass as the servers run it, with what a GPU needs: staging, timing, buckets.

``Engine`` takes a batch as the requests' tensors and gives back each request's logits and the
model's own time. It is made, warmed and called on one thread, the server's forward thread (a
CUDA graph, the current device and torch.compile's caches all belong to a thread's context):

- staging: the batch is concatenated into one host buffer of ``max_rows`` samples, allocated
  once; on CUDA it is pinned, and the copy to the device does not block the host;
- buckets (``--cuda-graphs``, ``--compile``): the batch sizes are the powers of two up to
  ``max_rows``, and ``max_rows`` itself; a batch is padded with zero rows to the nearest bucket
  at least its size, and the padded rows' outputs dropped. With ``--compile`` the model is
  ``torch.compile(dynamic=False)``, compiled once per bucket at start-up; with ``--cuda-graphs``
  (CUDA only) one graph is captured per bucket (of the compiled model when both are on) and
  replayed from static input and output tensors;
- timing: the model's own time, without the copies. On the CPU, ``perf_counter`` around the
  forward pass; on CUDA, two ``torch.cuda.Event(enable_timing=True)`` recorded on the stream
  around it, read after the end event has completed: a host timer around asynchronous CUDA
  work would time the launches, not the work.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import torch
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]
#: Passes run on a side stream before a capture, as torch's CUDA graph notes advise.
CAPTURE_WARM_PASSES: Final = 3
#: Warm-up passes at batch 1 and at the largest batch, before the server says it is ready.
WARM_PASSES: Final = 3


def bucket_sizes(max_rows: int) -> tuple[int, ...]:
    """The powers of two from 1 up to ``max_rows``, then ``max_rows`` when it is not one."""
    if max_rows < 1:
        raise ValueError(f"max_rows: must be at least 1, got {max_rows}")
    sizes = [1 << k for k in range(max_rows.bit_length()) if 1 << k <= max_rows]
    if sizes[-1] != max_rows:
        sizes.append(max_rows)
    return tuple(sizes)


def bucket_for(rows: int, sizes: Sequence[int]) -> int:
    """The smallest of ``sizes`` (ascending) that holds ``rows``; ValueError when none does."""
    at = bisect.bisect_left(sizes, rows)
    if rows < 1 or at == len(sizes):
        raise ValueError(f"batch of {rows}: no bucket holds it (buckets {list(sizes)})")
    return sizes[at]


def pad_rows(batch: torch.Tensor, rows: int) -> torch.Tensor:
    """``batch`` with zero rows appended up to ``rows`` (itself when it has as many)."""
    missing = rows - int(batch.shape[0])
    if missing < 0:
        raise ValueError(f"cannot pad {batch.shape[0]} rows to {rows}")
    if missing == 0:
        return batch
    return torch.cat([batch, batch.new_zeros((missing, *batch.shape[1:]))])


def describe(device: torch.device) -> str:
    """``cpu``, or ``cuda:N (NAME)``: the device as the metrics and results record it."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


class HostTimer:
    """The CPU's forward time: ``perf_counter`` at ``begin`` and ``end``."""

    def __init__(self) -> None:
        self._begin = self._end = 0.0

    def begin(self) -> None:
        self._begin = time.perf_counter()

    def end(self) -> None:
        self._end = time.perf_counter()

    def seconds(self) -> float:
        return self._end - self._begin


class CudaTimer:
    """The GPU's forward time: events recorded on the current stream at ``begin`` and ``end``;
    ``seconds`` waits for the end event, then reads the time between them."""

    def __init__(self) -> None:
        self._begin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        self._end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]

    def begin(self) -> None:
        self._begin.record()

    def end(self) -> None:
        self._end.record()

    def seconds(self) -> float:
        self._end.synchronize()
        return float(self._begin.elapsed_time(self._end)) / 1000.0


def timer_for(device: torch.device) -> HostTimer | CudaTimer:
    """The forward timer for ``device``: CUDA events on CUDA, the host's clock elsewhere."""
    return CudaTimer() if device.type == "cuda" else HostTimer()


class Staging:
    """A host buffer of ``max_rows`` samples (pinned for a copy to CUDA), reused by every pass:
    a batch's tensors are concatenated into it and padded rows zeroed."""

    def __init__(self, max_rows: int, sample_shape: Sequence[int], *, pinned: bool) -> None:
        self.max_rows = max_rows
        self.buffer = torch.empty((max_rows, *sample_shape), dtype=torch.float32)
        if pinned:
            self.buffer = self.buffer.pin_memory()

    def fill(self, parts: Sequence[torch.Tensor], rows: int) -> torch.Tensor:
        """The first ``rows`` rows of the buffer: ``parts`` one after the other, then zeros."""
        n = sum(int(p.shape[0]) for p in parts)
        if not n <= rows <= self.max_rows:
            raise ValueError(f"batch of {n} in {rows} rows: at most {self.max_rows}")
        torch.cat(list(parts), out=self.buffer[:n])
        if rows > n:
            self.buffer[n:rows].zero_()
        return self.buffer[:rows]


@dataclass(frozen=True, slots=True)
class Graph:
    """A captured CUDA graph of one bucket, with its static input and output."""

    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    outputs: torch.Tensor


def capture(forward: Forward, inputs: torch.Tensor) -> Graph:
    """A CUDA graph of ``forward(inputs)``, ``inputs`` being a device tensor the replays read
    (warmed on a side stream first, so that lazy initialisation stays out of the graph)."""
    device = inputs.device
    side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(CAPTURE_WARM_PASSES):
            forward(inputs)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = forward(inputs)
    return Graph(graph, inputs, outputs)


class Engine:
    """A model's forward pass over a batch of requests' tensors, as the forward thread runs it.

    Make it on that thread, then call ``warm_up`` there before serving.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        sample_shape: Sequence[int],
        max_rows: int,
        *,
        cuda_graphs: bool = False,
        compile: bool = False,
    ) -> None:
        if cuda_graphs and device.type != "cuda":
            raise ValueError(f"--cuda-graphs needs a CUDA device, the device is {device}")
        if device.type == "cuda":
            torch.cuda.set_device(device)  # this thread's current device
        self.device = device
        self.sample_shape = tuple(sample_shape)
        self.max_rows = max_rows
        self.buckets: tuple[int, ...] | None = (
            bucket_sizes(max_rows) if cuda_graphs or compile else None
        )
        self._staging = Staging(max_rows, sample_shape, pinned=device.type == "cuda")
        self._timer = timer_for(device)
        self._forward: Forward = model
        if compile:
            # One compilation per bucket: more than dynamo's default limit of 8 for large ones.
            limit = len(self.buckets or ()) + 1
            dynamo = torch._dynamo.config
            dynamo.recompile_limit = max(dynamo.recompile_limit, limit)
            self._forward = torch.compile(model, dynamic=False)
        self._cuda_graphs = cuda_graphs
        self._graphs: dict[int, Graph] = {}

    def warm_up(self) -> None:
        """Compile or capture every bucket, then a few passes at batch 1 and at ``max_rows``."""
        with torch.inference_mode():
            for rows in self.buckets or ():
                inputs = torch.zeros((rows, *self.sample_shape), device=self.device)
                if self._cuda_graphs:
                    self._graphs[rows] = capture(self._forward, inputs)
                else:
                    self._forward(inputs)  # torch.compile: one compilation per bucket
        generator = torch.Generator().manual_seed(0)
        for rows in sorted({1, self.max_rows}):
            batch = torch.rand((rows, *self.sample_shape), generator=generator)
            for _ in range(WARM_PASSES):
                self(list(torch.split(batch, 1)))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, parts: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        """Each part's logits (on the CPU, in order) and the model's own time in seconds."""
        sizes = [int(p.shape[0]) for p in parts]
        n = sum(sizes)
        rows = n if self.buckets is None else bucket_for(n, self.buckets)
        timer = self._timer
        with torch.inference_mode():
            if self.device.type == "cpu" and len(parts) == 1 and rows == n:
                host = parts[0]  # nothing to concatenate or pad
            else:
                host = self._staging.fill(parts, rows)
            graph = self._graphs.get(rows)
            if graph is not None:
                graph.inputs.copy_(host, non_blocking=True)
                timer.begin()
                graph.graph.replay()
                timer.end()
                out = graph.outputs
            else:
                inputs = host.to(self.device, non_blocking=True)
                timer.begin()
                out = self._forward(inputs)
                timer.end()
            # On CUDA a copy to pageable memory: it waits for the pass (and leaves a graph's
            # static output free for the next replay).
            logits = out[:n].to("cpu")
            seconds = timer.seconds()
        return list(torch.split(logits, sizes)), seconds
