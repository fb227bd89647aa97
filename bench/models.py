"""The result file: one versioned pydantic model per run, written atomically, loaded back.

A run measures each implementation at one or more load points (target rates of a sweep, or the
single load of a closed-loop run); each point has repeated trials, interleaved across
implementations, and a summary of medians with confidence intervals. Every trial says whether
it is valid: a trial where the load generator, not the system, was the limit is kept (so the
report can show it) but is never summarised as the system's figure.

Schema history (bump SCHEMA_VERSION when a reader of an older file would misread a newer one):

- 1: first version — scenario, environment, per-implementation load, process and server metrics.
- 2: load points, each with trials; open-loop load with corrected and uncorrected latency,
  schedule slip, target vs achieved rate, validity; medians with confidence intervals;
  server-side latency; SLO search results.
- 3: an optional in-process study (`inprocess`): pools measured without a network by pyperf and
  `go test -bench`, throughput per worker count and task size.
- 4: studies are generic: `studies`, a list of `Study` (its kind, name and spec as used, labelled
  series with units, named estimates, errors and a free `metadata` map, as pyperf keeps facts of
  one benchmark out of its schema), replacing `inprocess`. The scenario names its engine and
  records the engine's own table as used (`engine_spec`) instead of a locustfile. Percentiles
  have p95. An implementation that asked for a GPU records the device it got (`device`), the
  environment the GPUs found (`gpus`). The scenario says what the profile's time budget cut
  (`notes`). Later, without a new version (optional fields, so older files still load): a
  trial's process stats may hold the RSS after a cool-down (`rss_after_cooldown_bytes`,
  `cooldown_s`); a point's summary may hold `system_error_rate` and `generator_error_rate`;
  load may hold the bytes on the wire (`wire_sent_bytes`, `wire_received_bytes`) and, for server
  streams, `stream` (messages, time to first message, gaps); an implementation may carry
  `labels` (transport, runtime …) and a summary `cpu_us_per_call`,
  `wire_bytes_per_call` and the stream's figures.

Files of versions 2 and 3 are upgraded on load, in one place (`bench.store.upgrade`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION: Final = 4

ParamValue = int | float | str | bool
LoadModel = Literal["closed-loop", "open-loop"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CpuSets(_Model):
    """Which CPUs each role ran on; the system and the load generator never share one."""

    system: list[int]
    loadgen: list[int]
    support: list[int]
    shared: bool = Field(description="true when there were too few CPUs to keep roles apart")


class Environment(_Model):
    git_sha: str | None
    git_dirty: bool
    hostname: str
    platform: str
    cpu_model: str
    cpu_count: int
    cpusets: CpuSets
    python: str
    go: str | None
    libraries: dict[str, str]
    gpus: list[str] = Field(default=[], description="names of the GPUs found, e.g. NVIDIA H200")


class Scenario(_Model):
    """Everything that defines the load, so that a result can be reproduced from itself."""

    pattern: str
    profile: str
    engine: str = Field(description="the load engine's name, e.g. loadgen or locust")
    engine_spec: dict[str, Any] = Field(
        description="the engine's own table of the system.toml ([scenario.<engine>]) as used"
    )
    load_model: LoadModel
    arrival: Literal["constant", "poisson"] | None = Field(description="open-loop arrivals")
    rates: list[float] = Field(description="target rates (req/s) of the points; [] closed-loop")
    trials: int = Field(ge=1)
    slo: str | None = Field(description="the SLO points are judged against, when one was given")
    notes: list[str] = Field(
        default=[], description="what the run changed of its parameters and why (a time budget)"
    )
    params: dict[str, ParamValue]
    server_latency_metric: str | None = Field(
        default=None, description="the system's latency histogram (seconds), system.toml's"
    )
    server_latency_parts: list[str] = Field(
        default=[],
        description="histograms (seconds) of the consecutive parts of that latency, each "
        "observed once per request, that the report sets against it",
    )
    server_histograms: list[str] = Field(
        default=[],
        description="other histograms of the system's (a batch size …) whose distribution the "
        "report shows per rate",
    )
    baseline: str | None = Field(
        default=None,
        description="the implementation the report prices every other against (system.toml's "
        "`[scenario] baseline`)",
    )
    per_request: list[str] = Field(
        default=[],
        description="counters the report divides by the requests answered (system.toml's "
        "`[scenario] per_request`)",
    )


class Percentiles(_Model):
    """Latency in milliseconds."""

    p50: float
    p90: float
    p95: float | None = Field(
        description="None only in results upgraded from schema 3 that kept no histogram of it "
        "(schedule slip)"
    )
    p99: float
    p999: float
    max: float
    mean: float


class StreamStats(_Model):
    """Server-streaming calls in the window: their messages, the first one's wait, the gaps."""

    messages: int
    messages_per_s: float
    first_message_ms: Percentiles = Field(
        description="from each call's intended send time to its first message"
    )
    gap_ms: Percentiles = Field(description="between consecutive messages of one call")
    first_message_histogram: str = Field(description="HdrHistogram, microseconds, base64")
    gap_histogram: str = Field(description="HdrHistogram, microseconds, base64")


class LoadStats(_Model):
    """What the load generator measured in one trial's window (warm-up excluded)."""

    engine: str
    load_model: LoadModel
    target_rps: float | None = Field(description="offered load: the open-loop rate or paced users")
    achieved_rps: float = Field(description="requests sent per second in the window")
    requests: int = Field(description="requests in the window, errors included")
    errors: int
    error_kinds: dict[str, int]
    duration_s: float
    throughput_rps: float = Field(description="successful responses per second")
    latency_ms: Percentiles = Field(
        description="open-loop: from each request's intended send time (coordinated omission "
        "corrected); closed-loop: from its actual send time"
    )
    uncorrected_ms: Percentiles | None = Field(description="open-loop: from the actual send time")
    slip_ms: Percentiles | None = Field(description="open-loop: how late requests left")
    histogram: str = Field(description="HdrHistogram of latency_ms, microseconds, base64")
    uncorrected_histogram: str | None
    generator_cpu_percent: float = Field(description="load generator CPU, % of one core")
    generator_cpus: int
    in_flight_cap_hit: bool = Field(
        default=False, description="open-loop: the generator's concurrency cap was reached"
    )
    wire_sent_bytes: int | None = Field(
        default=None,
        description="bytes the generator wrote to its connections in the window (HTTP headers, "
        "HTTP/2 and gRPC framing included; TCP/IP headers not); None: not counted",
    )
    wire_received_bytes: int | None = Field(default=None, description="bytes it read, likewise")
    stream: StreamStats | None = Field(default=None, description="server-streaming calls only")


class ProcessStats(_Model):
    cpu_seconds: float
    cpu_percent: float = Field(description="% of one core, averaged over the measured window")
    peak_rss_bytes: int = Field(description="peak of the summed RSS of the process tree")
    rss_after_cooldown_bytes: int | None = Field(
        default=None,
        description="summed RSS of the process tree `cooldown_s` after the load generator "
        "stopped: what the system kept of the load (None: not sampled, as in older results)",
    )
    cooldown_s: float | None = Field(
        default=None, description="seconds of no load before `rss_after_cooldown_bytes`"
    )


class Trial(_Model):
    index: int
    load: LoadStats
    process: ProcessStats
    system_parts: dict[str, ProcessStats] = Field(
        default={},
        description="the supports that are part of the system measured (system.toml's `cpus = "
        '"system"`, a core behind a proxy), by name: their process trees over the same window',
    )
    server_metrics: dict[str, float]
    server_metrics_error: str | None = Field(
        default=None, description="why there are no server-side metrics (an overloaded system)"
    )
    server_latency_ms: dict[str, float] = Field(
        description="p50_low/p50_high, p99_low/p99_high: the bucket bounds (ms) of the system's "
        "own latency histogram that each quantile lies in"
    )
    valid: bool
    invalid_reasons: list[str]


class Estimate(_Model):
    """A median over trials with its confidence interval (bootstrap)."""

    median: float
    low: float
    high: float
    n: int


class LoadPoint(_Model):
    target_rps: float | None
    trials: list[Trial]
    summary: dict[str, Estimate] = Field(
        description="over valid trials: throughput_rps, achieved_rps, p50, p90, p95, p99, p999, "
        "max (corrected), u_p50, u_p99 (uncorrected), error_rate, and its two parts: "
        "system_error_rate (answers the system gave, such as 503) and generator_error_rate "
        "(requests never answered: never sent at the generator's cap, timed out, connection "
        "failed)"
    )
    valid: bool = Field(description="at least one valid trial, and most trials valid")


class SloSearch(_Model):
    """The highest rate found to meet the SLO, and why the search stopped."""

    slo: str
    best_rate: float | None
    first_failing_rate: float | None
    limited_by_generator: bool
    reason: str


ImplStatus = Literal["ok", "verify_failed", "failed"]


class ImplementationResult(_Model):
    name: str
    language: str
    status: ImplStatus
    error: str | None = None
    stderr_tail: str | None = None
    verify_problems: list[str] = []
    points: list[LoadPoint] = []
    knee_rps: float | None = Field(
        default=None, description="highest swept rate meeting the SLO with every lower rate"
    )
    search: SloSearch | None = None
    device: str | None = Field(
        default=None,
        description="for an implementation that asked for a GPU: the one it got, e.g. "
        "`cuda:0 (NVIDIA H200)`, or `cpu`",
    )
    labels: dict[str, str] = Field(
        default={},
        description="what tells it from the others (system.toml's `labels`: transport = grpc, "
        "runtime = go …): the report contrasts implementations that differ in one label",
    )
    admits_rps: float | None = Field(
        default=None,
        description="the rate it was configured to admit at most (a rate limit): the report "
        "checks what it admitted at offered loads above it",
    )


class Axis(_Model):
    """What a coordinate of a series measures, and in what: `throughput` in `tasks/s`."""

    name: str
    unit: str


class SeriesPoint(_Model):
    x: float
    y: Estimate = Field(description="the median of the samples with its confidence interval")
    metadata: dict[str, Any] = Field(
        default={}, description="facts of this point that the study's kind defines"
    )


class Series(_Model):
    """One labelled curve of a study: an implementation's y against x, with units."""

    label: str
    implementation: str
    x: Axis
    y: Axis
    points: list[SeriesPoint]
    metadata: dict[str, Any] = Field(
        default={}, description="facts shared by the points, defined by the study's kind"
    )


class Study(_Model):
    """A measurement of a pattern besides its service sweep, run by a study kind (bench/studies).

    The schema knows no kind: what a kind measures is in its series and estimates, and any fact
    of its own is in `metadata`, as pyperf keeps facts of one benchmark out of its schema.
    """

    kind: str = Field(description="the study kind that ran it, e.g. pools")
    name: str = Field(description="its table's name in the system.toml, [studies.<name>]")
    spec: dict[str, Any] = Field(description="its table as used, rendered with the parameters")
    series: list[Series] = []
    estimates: dict[str, Estimate] = Field(
        default={}, description="named figures with their confidence intervals"
    )
    errors: list[str] = Field(default=[], description="what could not be measured, and why")
    metadata: dict[str, Any] = {}


class RunResult(_Model):
    schema_version: Literal[4] = SCHEMA_VERSION
    run_id: str
    created_at: datetime
    scenario: Scenario
    environment: Environment
    implementations: list[ImplementationResult]
    studies: list[Study] = []

    def implementation(self, name: str) -> ImplementationResult:
        for impl in self.implementations:
            if impl.name == name:
                return impl
        raise KeyError(name)


def first_error(err: ValidationError) -> str:
    """The first problem pydantic found, as one line: `field.path: message`."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"
