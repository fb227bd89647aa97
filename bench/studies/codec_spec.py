"""The codec study's table: `[studies.<name>]` with `kind = "codec"`, rendered with the run's
parameters.

It names the pattern's pytest-benchmark suite and Go benchmark and the arguments they are given:
`{sizes}` in them becomes the sizes, comma-separated, and `{handler}` the handler's request,
`handler_limit,handler_features` ("" without them); write them `{{sizes}}`, `{{handler}}` in the
system.toml. Nothing else is read.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.studies.base import Sizes
from bench.studies.codec_data import GOAL_CALLS_S

_BENCHTIME = re.compile(r"^(\d+x|\d+(\.\d+)?(ns|us|µs|ms|s|m))$")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PytestSuite(_Table):
    """`python -m pytest SCRIPT *args` with pytest-benchmark's options, run from the root."""

    script: str = Field(description="relative to the repository root")
    args: list[str] = Field(
        default=[], description="given unread; `{sizes}` and `{handler}` filled in"
    )


class GoCodecBenchmark(_Table):
    """`go test -bench ^BENCHMARK$ PACKAGE -args *args`, run in `dir`."""

    dir: str = "go"
    package: str = Field(description="the Go package of the benchmark, e.g. ./internal/x/codec")
    benchmark: str = Field(description="e.g. BenchmarkCodec")
    args: list[str] = Field(
        default=[], description="given unread; `{sizes}` and `{handler}` filled in"
    )


class CodecSpec(_Table):
    """The `[studies.<name>]` table of kind "codec", rendered with the run's parameters."""

    sizes: Sizes = Field(min_length=1, description="protobuf sizes of the messages, bytes")
    min_rounds: int = Field(default=5, ge=1, description="pytest-benchmark's rounds at least")
    max_time_s: float = Field(default=0.5, gt=0, description="pytest-benchmark's time per test")
    min_time_s: float = Field(
        default=0.0005, gt=0, description="a round is at least this long (calls batched)"
    )
    handler_limit: int | None = Field(
        default=None, ge=1, description="the handler's request: items per answer (None: no handler)"
    )
    handler_features: int | None = Field(
        default=None, ge=0, description="the handler's request: floats per item"
    )
    goal_calls_s: float = Field(
        default=GOAL_CALLS_S, gt=0, description="the calls/s the report sets against CPU per call"
    )
    go_count: int = Field(default=5, ge=1, description="go test -bench -count")
    go_benchtime: str = Field(default="0.2s", description="go test -benchtime, e.g. 0.2s or 100x")
    pytest: PytestSuite
    go: GoCodecBenchmark | None = None

    @model_validator(mode="after")
    def _handler(self) -> CodecSpec:
        if (self.handler_limit is None) != (self.handler_features is None):
            raise ValueError("handler_limit and handler_features go together, or neither")
        return self

    @property
    def handler(self) -> tuple[int, int] | None:
        """The handler's request, (limit, features), when the table asks for one."""
        if self.handler_limit is None or self.handler_features is None:
            return None
        return self.handler_limit, self.handler_features

    @field_validator("go_benchtime")
    @classmethod
    def _benchtime(cls, value: str) -> str:
        if not _BENCHTIME.match(value):
            raise ValueError(f"{value!r} is not a go -benchtime (0.2s, 500ms, 100x)")
        return value
