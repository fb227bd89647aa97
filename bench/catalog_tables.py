"""The tables of a pattern's system.toml below the pattern itself: how an implementation or a
support process is built, started, probed and scraped, and the `[scenario]` and `[selfcheck]`
tables. `bench.catalog` puts them together into a `Pattern` and re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Build(_Model):
    """A command that builds what an implementation runs; it runs in `dir`, relative to root."""

    dir: str = "."
    command: list[str] = Field(min_length=1)


class KindTable(BaseModel):
    """A table naming its kind; the other keys belong to the kind's own model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str

    def rest(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StudyTable(KindTable):
    when: Any = Field(default=True, description="a boolean, or `{param}` naming one")


class Metrics(_Model):
    """Where an implementation serves Prometheus metrics: its own port unless `port` is given."""

    port: int | None = Field(default=None, ge=1024, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/")


HTTP_READY = KindTable(kind="http", path="/healthz")  # type: ignore[call-arg]


class Support(_Model):
    """A process implementations need (simulated backends, a database, a core service).

    `scope = "trial"` starts it afresh with each trial (as the implementation is); `"run"` starts
    it once per run, runs `setup` once it is ready and `reset` before every trial. `cpus =
    "system"` puts it on the system's CPUs instead of the load generator's: a process that is
    part of the system measured (the server behind a proxy), not a stand-in for the world outside.
    """

    description: str = ""
    build: Build | None = None
    command: list[str] = Field(min_length=1)
    ports: list[int] = Field(min_length=1)
    probe: KindTable = HTTP_READY
    ready_timeout_s: float = 20.0
    scope: Literal["run", "trial"] = "trial"
    cpus: Literal["support", "system"] = "support"
    setup: list[list[str]] = []
    reset: list[list[str]] = []
    gpu: bool = False
    metrics: Metrics | None = Field(
        default=None,
        description="where it serves Prometheus metrics (`port`: one of its `ports`, else its "
        "first): scraped around every measured window, beside the implementation's, into the "
        "trial's server metrics (a relay's lag, a database's statement counts)",
    )

    probe_port: int | None = Field(
        default=None,
        description="the port its probe checks, one of `ports` (default: the first): a launcher "
        "whose readiness another port tells (a database's, once it answers queries)",
    )

    def scraped_port(self) -> int:
        """The port its metrics are served on: `metrics.port`, else its first."""
        if self.metrics is not None and self.metrics.port is not None:
            return self.metrics.port
        return self.ports[0]

    @model_validator(mode="after")
    def _ports_are_its_own(self) -> Support:
        if self.metrics and self.metrics.port is not None and self.metrics.port not in self.ports:
            raise ValueError(f"metrics.port: {self.metrics.port} is not one of ports {self.ports}")
        if self.probe_port is not None and self.probe_port not in self.ports:
            raise ValueError(f"probe_port: {self.probe_port} is not one of ports {self.ports}")
        return self


class Implementation(_Model):
    language: str
    description: str = ""
    labels: dict[str, str] = Field(
        default={},
        description='what tells it from the others, e.g. {transport = "grpc", runtime = '
        '"go"}: the report contrasts implementations that differ in one label only (a label '
        'with a value "none" is a reference: its other values are contrasted with it alone)',
    )
    build: Build | None = None
    command: list[str] = Field(min_length=1, description="the program; the pattern's args follow")
    port: int = Field(ge=1024, le=65535)
    probe: KindTable = HTTP_READY
    metrics: Metrics | None = Field(
        default=None, description="default: /metrics on its port when its probe is http"
    )
    ready_timeout_s: float = 20.0
    needs: list[str] = Field(default=[], description="the support processes it is started with")
    admits_rps: str | float | None = Field(
        default=None,
        description="the rate it is configured to admit at most (a rate limit; may be "
        "`{param}`): the report checks what it admitted at offered loads above it",
    )
    gpu: bool = Field(default=False, description="one GPU when the machine has one, else none")
    scenario: dict[str, dict[str, Any]] | str = Field(
        default={},
        description="`[implementations.<name>.scenario.<engine>]`: this implementation's own "
        "table for an engine, in place of the pattern's (a gRPC server beside REST ones); or the "
        "name of a `[scenarios.<name>]` set that several implementations share",
    )

    def metrics_endpoint(self) -> Metrics | None:
        if self.metrics is not None:
            return self.metrics
        return Metrics() if self.probe.kind == "http" else None


class SelfCheckTable(_Model):
    """How `patternbench selfcheck` slows the pattern down to see whether the gate notices: a
    busy wait of `{delay_us}` microseconds (`code`, in the file's language) inserted in `file`
    right after the line `after` of one implementation's request handler."""

    implementation: str
    file: str
    after: str = Field(min_length=1)
    code: str = Field(min_length=1, description="may use {delay_us}")


class ScenarioTables(BaseModel):
    """`[scenario]`: the system's latency metric, and one table per load engine."""

    model_config = ConfigDict(extra="allow", frozen=True)

    server_latency_metric: str | None = Field(
        default=None, description="the system's Prometheus latency histogram (seconds)"
    )
    server_latency_parts: list[str] = Field(
        default=[],
        description="histograms (seconds) of the consecutive parts of that latency (queue, "
        "compute …), each observed once per request: the report splits the latency by them",
    )
    server_histograms: list[str] = Field(
        default=[], description="other histograms (a batch size …) the report shows per rate"
    )
    baseline: str | None = Field(
        default=None,
        description="an implementation the report prices every other against: the latency each "
        "adds over it, trial by trial, and its CPU per call",
    )
    per_request: list[str] = Field(
        default=[],
        description="counters of the system's or its supports' metrics (`name{labels}`, or a "
        "name for the sum of its label sets) the report divides by the requests answered",
    )

    def engines(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in (self.model_extra or {}).items() if isinstance(v, dict)}
