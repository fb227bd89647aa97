"""The catalog of systems: every `systems/<pattern>/system.toml`, parsed and checked.

Reading the catalog starts nothing. A malformed file raises CatalogError whose message is one line
naming the file and the field, e.g. `systems/demo/system.toml: implementations.go.port: Input
should be a valid integer`.

The catalog knows the *shape* of a pattern (implementations, support processes, parameters,
profiles) but no kind of engine, probe or study: their tables (`[scenario.<engine>]`,
`probe = {kind = ...}`, `[studies.<name>] kind = ...`) are checked against the table models the
composition root hands in (`Kinds`), after rendering them with each profile's parameters.

Strings are templates with `{placeholders}`: every parameter of the pattern, plus `python` (the
harness's interpreter), `root` (the repository), `run_dir` (the run's folder, where a process may
leave files the run keeps, such as traces), `port` (the implementation's own), `metrics_port`
(its `metrics = {port = N}`, when it serves metrics on a port of their own), and for each
support process `S`: `S_urls` (comma-separated `http://127.0.0.1:PORT`), `S_addrs`
(`127.0.0.1:PORT`, comma-separated), `S_port` (its first port) and `S_metrics_port` (its
`metrics` port, else its first). A string that is exactly one
placeholder takes the parameter's own type (`when = "{inprocess}"` is a boolean).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bench.models import ParamValue, first_error
from bench.params import (
    LOAD_PARAMS,
    OPTIONAL_PARAMS,
    ParamError,
    check_load_params,
    coerce_durations,
    parse_param,
)
from bench.templates import render_table

BUILTIN_NAMES = ("python", "root", "run_dir", "port", "metrics_port")


class CatalogError(Exception):
    """A system.toml (or a parameter given for it) that cannot be used; the message is one line."""


@dataclass(frozen=True, kw_only=True)
class Kinds:
    """The table models of every kind the harness knows, by name (cli.py's dict literals)."""

    engines: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    #: Engines that can run closed-loop users.
    closed_loop: frozenset[str] = frozenset()
    probes: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    studies: Mapping[str, type[BaseModel]] = field(default_factory=dict)


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

    @model_validator(mode="after")
    def _metrics_port(self) -> Support:
        if self.metrics and self.metrics.port is not None and self.metrics.port not in self.ports:
            raise ValueError(f"metrics.port: {self.metrics.port} is not one of ports {self.ports}")
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


class Pattern(_Model):
    pattern: str
    description: str
    vectors: str | None = None
    system_cpus: Literal["half", "all"] = Field(
        default="half",
        description="half: the system and the load generator on separate CPUs; all: the system "
        "gets every CPU and shares some with the generator (for systems that scale with cores "
        "under a light load)",
    )
    scenario: ScenarioTables
    scenarios: dict[str, dict[str, dict[str, Any]]] = Field(
        default={},
        description="`[scenarios.<set>.<engine>]`: engine tables that implementations take by "
        'name (`scenario = "<set>"`) in place of the pattern\'s',
    )
    studies: dict[str, StudyTable] = {}
    selfcheck: SelfCheckTable | None = None
    args: list[str] = Field(
        default=[], description="the contract's flags, for every implementation"
    )
    params: dict[str, ParamValue]
    profiles: dict[str, dict[str, ParamValue]] = {}
    support: dict[str, Support] = {}
    implementations: dict[str, Implementation] = Field(min_length=1)
    root: Path = Field(default=Path("."), exclude=True)
    folder: Path = Field(default=Path("."), exclude=True)
    kinds: Kinds = Field(default_factory=Kinds, exclude=True)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("support")
    @classmethod
    def _support_names(cls, value: dict[str, Support]) -> dict[str, Support]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"support name {name!r} must be an identifier")
        return value

    def template_names(self) -> set[str]:
        names = set(self.params) | set(OPTIONAL_PARAMS) | set(BUILTIN_NAMES)
        for name in self.support:
            names |= {f"{name}_urls", f"{name}_addrs", f"{name}_port", f"{name}_metrics_port"}
        return names

    def resolve_params(self, profile: str, overrides: Mapping[str, str]) -> dict[str, ParamValue]:
        """Defaults, then the profile, then `--param k=v` overrides, each typed like its default."""
        if profile != "default" and profile not in self.profiles:
            known = ", ".join(["default", *sorted(self.profiles)])
            raise CatalogError(f"{self.pattern}: no profile {profile!r} (known: {known})")
        params: dict[str, ParamValue] = {**OPTIONAL_PARAMS, **self.params}
        params.update(self.profiles.get(profile, {}))
        try:
            coerce_durations(params)
            for key, text in overrides.items():
                if key not in params:
                    known = ", ".join(sorted(params))
                    raise ParamError(
                        f"--param {key}: {self.pattern} has no such parameter ({known})"
                    )
                params[key] = parse_param(key, text, params[key])
            engines = {e: e in self.kinds.closed_loop for e in self.engine_names()}
            check_load_params(params, engines)
        except ParamError as e:
            raise CatalogError(str(e)) from None
        return params

    def engine_table(
        self, engine: str, values: Mapping[str, object], implementation: str | None = None
    ) -> BaseModel:
        """The engine's `[scenario.<engine>]` table (the implementation's own when it has one),
        rendered and checked by its model. A `workload` parameter naming a `[scenarios.<set>]`
        gives every implementation that set's table instead (a profile's other workload)."""
        workload = str(values.get("workload") or "")
        if workload:
            if workload not in self.scenarios:
                known = ", ".join(self.scenarios) or "none"
                raise CatalogError(
                    f"{self.pattern}: workload: no [scenarios.{workload}] (known: {known})"
                )
            table = self.scenarios[workload].get(engine)
            if table is None:
                raise CatalogError(f"{self.pattern}: no [scenarios.{workload}.{engine}] table")
            return self.kinds.engines[engine].model_validate(render_table(table, values))
        own = self.own_tables(implementation) if implementation else {}
        table = own.get(engine, self.scenario.engines().get(engine))
        if table is None:
            raise CatalogError(
                f"{self.pattern}: no [scenario.{engine}] table"
                + (f" for implementation {implementation}" if implementation else "")
            )
        return self.kinds.engines[engine].model_validate(render_table(table, values))

    def selected(self, params: Mapping[str, ParamValue]) -> list[str]:
        """The implementations the `implementations` parameter names (all when it is empty)."""
        names = [n.strip() for n in str(params.get("implementations") or "").split(",")]
        names = [n for n in names if n]
        unknown = [n for n in names if n not in self.implementations]
        if unknown:
            known = ", ".join(self.implementations)
            raise CatalogError(
                f"implementations: no implementation {unknown[0]!r} (known: {known})"
            )
        return names or list(self.implementations)

    def admits_rps(self, implementation: str, values: Mapping[str, object]) -> float | None:
        """The rate an implementation is configured to admit at most, rendered; None: no limit."""
        limit = self.implementations[implementation].admits_rps
        if limit is None:
            return None
        rendered = render_table(limit, values)
        try:
            rate = float(rendered)
        except (TypeError, ValueError):
            raise CatalogError(
                f"implementations.{implementation}.admits_rps: {rendered!r} is not a rate"
            ) from None
        if rate <= 0:
            raise CatalogError(f"implementations.{implementation}.admits_rps: must be > 0")
        return rate

    def own_tables(self, implementation: str) -> dict[str, dict[str, Any]]:
        """An implementation's own engine tables: its `scenario`, or the set it names."""
        own = self.implementations[implementation].scenario
        return self.scenarios[own] if isinstance(own, str) else own

    def engine_names(self) -> list[str]:
        """The engines with a table, the pattern's or an implementation's."""
        names = dict.fromkeys(self.scenario.engines())
        for name in self.implementations:
            names.update(dict.fromkeys(self.own_tables(name)))
        return list(names)

    @model_validator(mode="after")
    def _known_sets(self) -> Pattern:
        for name, impl in self.implementations.items():
            if isinstance(impl.scenario, str) and impl.scenario not in self.scenarios:
                known = ", ".join(self.scenarios) or "none"
                raise ValueError(
                    f"implementations.{name}.scenario: no [scenarios.{impl.scenario}] "
                    f"(known: {known})"
                )
        return self

    def study_spec(self, name: str, values: Mapping[str, object]) -> tuple[str, BaseModel] | None:
        """A study's kind and its checked spec, rendered with values; None when `when` is off."""
        table = self.studies[name]
        if render_table({"when": table.when}, values)["when"] is not True:
            return None
        model = self.kinds.studies[table.kind]
        return table.kind, model.model_validate(render_table(table.rest(), values))

    def study_tables(self, values: Mapping[str, object]) -> dict[str, tuple[str, BaseModel]]:
        """The studies switched on by `when`, as (kind, checked spec)."""
        found = {name: self.study_spec(name, values) for name in self.studies}
        return {name: spec for name, spec in found.items() if spec is not None}


def template_values(
    pattern: Pattern,
    params: Mapping[str, ParamValue],
    *,
    port: int | None = None,
    port_offset: int = 0,
    python: str = "python",
    run_dir: Path | None = None,
) -> dict[str, object]:
    """What `{placeholders}` stand for: the parameters, the built-in names, and each support's
    addresses, its ports shifted by `port_offset` (a run's; 0 when checking tables)."""
    values: dict[str, object] = {**params, "python": python, "root": pattern.root}
    values["run_dir"] = run_dir if run_dir is not None else ""
    values["port"] = port if port is not None else ""
    values["metrics_port"] = ""  # the implementation's own metrics port, when it has one
    for name, support in pattern.support.items():
        ports = [p + port_offset for p in support.ports]
        values[f"{name}_urls"] = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        values[f"{name}_addrs"] = ",".join(f"127.0.0.1:{p}" for p in ports)
        values[f"{name}_port"] = ports[0]
        metrics = support.metrics.port if support.metrics and support.metrics.port else None
        values[f"{name}_metrics_port"] = metrics + port_offset if metrics else ports[0]
    return values


def load_pattern(file: Path, root: Path, kinds: Kinds | None = None) -> Pattern:
    from bench import catalog_checks as checks

    display = file.relative_to(root) if file.is_relative_to(root) else file
    try:
        raw: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise CatalogError(f"{display}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{display}: not valid TOML: {e}") from None
    try:
        pattern = Pattern.model_validate(
            {**raw, "root": root, "folder": file.parent, "kinds": kinds or Kinds()}
        )
    except ValidationError as e:
        raise CatalogError(f"{display}: {first_error(e)}") from None
    if pattern.pattern != file.parent.name:
        raise CatalogError(
            f"{display}: pattern: {pattern.pattern!r} must match its folder {file.parent.name!r}"
        )
    if pattern.vectors is not None and not (file.parent / pattern.vectors).is_file():
        vectors = file.parent / pattern.vectors
        shown = vectors.relative_to(root) if vectors.is_relative_to(root) else vectors
        raise CatalogError(f"{display}: vectors: no such file {shown}")
    missing = [p for p in LOAD_PARAMS if p not in pattern.params]
    if missing:
        raise CatalogError(f"{display}: params: missing {', '.join(missing)}")
    for profile, values in pattern.profiles.items():
        for key in values:
            if key not in pattern.params and key not in OPTIONAL_PARAMS:
                raise CatalogError(f"{display}: profiles.{profile}.{key}: not a declared param")
    checks.check_templates(pattern, raw, display)
    if kinds is not None:
        checks.check_kinds(pattern, display)
        checks.check_profiles(pattern, display)
    return pattern


def load_catalog(root: Path, kinds: Kinds | None = None) -> dict[str, Pattern]:
    """Every pattern under root/systems, by name; with `kinds`, every kind's table checked."""
    files = sorted((root / "systems").glob("*/system.toml"))
    return {p.pattern: p for p in (load_pattern(f, root, kinds) for f in files)}
