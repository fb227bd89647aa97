"""The ceiling study's table: `[studies.<name>]` with `kind = "ceiling"`, rendered with the run's
parameters.

It names the pattern's measuring script and the arguments it is given unread (the model, its
device and threads: the pattern's own words), the batch sizes and time per batch size the kind
passes it (`--batch-sizes`, `--min-run-time`), and what the report needs of the run: the servers'
histogram of samples per forward pass (`batch_metric`), their latency histogram
(`latency_metric`), the implementation without batching (`baseline`), the batcher's longest wait
(`max_queue_delay_us`, the bound of the low-load penalty) and the samples each request carries.
Parameters arrive as strings once rendered; numbers are read from them here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.studies.base import Sizes


class CeilingSpec(BaseModel):
    """The `[studies.<name>]` table of kind "ceiling", rendered with the run's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    script: str = Field(description="the measuring script, relative to the repository root")
    args: list[str] = Field(default=[], description="given to the script unread")
    batch_sizes: Sizes = Field(min_length=1, description="samples per forward pass timed")
    min_run_time_s: float = Field(default=0.3, gt=0, description="timing per batch size, s")
    batch_metric: str = Field(
        min_length=1, description="the servers' histogram of samples per forward pass"
    )
    latency_metric: str | None = Field(
        default=None, description="the servers' histogram of request time, seconds"
    )
    info_metric: str | None = Field(
        default=None,
        description="the servers' info gauge (labels device, torch, cuda, threads …), set "
        "against the ceiling's own",
    )
    baseline: str = Field(min_length=1, description="the implementation without batching")
    max_queue_delay_us: float = Field(
        ge=0,
        description="the longest a request waits for a batch, µs (Triton's "
        "max_queue_delay_microseconds): the low-load penalty's bound",
    )
    samples_per_request: int = Field(default=1, ge=1, description="samples each request carries")

    @property
    def max_queue_delay_ms(self) -> float:
        return self.max_queue_delay_us / 1000.0

    @field_validator("latency_metric", "info_metric", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        """An empty string (a parameter left empty) is no metric."""
        return None if isinstance(value, str) and not value.strip() else value
