"""The catalog of systems: every `systems/<pattern>/system.toml`, parsed and checked.

Reading the catalog starts nothing. A malformed file raises CatalogError whose message is one line
naming the file and the field, e.g. `systems/demo/system.toml: implementations.go.port: Input
should be a valid integer`.

The catalog knows the *shape* of a pattern (implementations, support processes, parameters,
profiles) but no kind of engine, probe or study: their tables (`[scenario.<engine>]`,
`probe = {kind = ...}`, `[studies.<name>] kind = ...`) are checked against the table models the
composition root hands in (`Kinds`), after rendering them with each profile's parameters.

Strings are templates with `{placeholders}`: every parameter of the pattern, plus `python` (the
harness's interpreter), `root` (the repository), `port` (the implementation's own), `metrics_port`
(its `metrics = {port = N}`, when it serves metrics on a port of their own), and for each
support process `S`: `S_urls` (comma-separated `http://127.0.0.1:PORT`), `S_addrs`
(`127.0.0.1:PORT`, comma-separated) and `S_port` (its first port). A string that is exactly one
placeholder takes the parameter's own type (`when = "{inprocess}"` is a boolean).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.models import ParamValue, first_error
from bench.params import (
    LOAD_PARAMS,
    OPTIONAL_PARAMS,
    ParamError,
    check_load_params,
    coerce_durations,
    parse_param,
)
from bench.templates import placeholders, render_table, strings

BUILTIN_NAMES = ("python", "root", "port", "metrics_port")


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
    it once per run, runs `setup` once it is ready and `reset` before every trial.
    """

    description: str = ""
    build: Build | None = None
    command: list[str] = Field(min_length=1)
    ports: list[int] = Field(min_length=1)
    probe: KindTable = HTTP_READY
    ready_timeout_s: float = 20.0
    scope: Literal["run", "trial"] = "trial"
    setup: list[list[str]] = []
    reset: list[list[str]] = []
    gpu: bool = False


class Implementation(_Model):
    language: str
    description: str = ""
    build: Build | None = None
    command: list[str] = Field(min_length=1, description="the program; the pattern's args follow")
    port: int = Field(ge=1024, le=65535)
    probe: KindTable = HTTP_READY
    metrics: Metrics | None = Field(
        default=None, description="default: /metrics on its port when its probe is http"
    )
    ready_timeout_s: float = 20.0
    needs: list[str] = Field(default=[], description="the support processes it is started with")
    gpu: bool = Field(default=False, description="one GPU when the machine has one, else none")
    scenario: dict[str, dict[str, Any]] = Field(
        default={},
        description="`[implementations.<name>.scenario.<engine>]`: this implementation's own "
        "table for an engine, in place of the pattern's (a gRPC server beside REST ones)",
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
            names |= {f"{name}_urls", f"{name}_addrs", f"{name}_port"}
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
        rendered and checked by its model."""
        own = self.implementations[implementation].scenario if implementation else {}
        table = own.get(engine, self.scenario.engines().get(engine))
        if table is None:
            raise CatalogError(
                f"{self.pattern}: no [scenario.{engine}] table"
                + (f" for implementation {implementation}" if implementation else "")
            )
        return self.kinds.engines[engine].model_validate(render_table(table, values))

    def engine_names(self) -> list[str]:
        """The engines with a table, the pattern's or an implementation's."""
        names = dict.fromkeys(self.scenario.engines())
        for impl in self.implementations.values():
            names.update(dict.fromkeys(impl.scenario))
        return list(names)

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


def _check_templates(pattern: Pattern, raw: dict[str, Any], file: Path) -> None:
    known = pattern.template_names()
    found = strings(raw.get("args", []), "args") + strings(raw.get("scenario", {}), "scenario")
    found += strings(raw.get("studies", {}), "studies")
    for group in ("support", "implementations"):
        for name, table in raw.get(group, {}).items():
            for key in ("command", "setup", "reset", "scenario"):
                found += strings(table.get(key, []), f"{group}.{name}.{key}")
    for where, template in found:
        try:
            fields = placeholders(template)
        except ValueError as e:
            raise CatalogError(f"{file}: {where}: {e}") from None
        for name in fields:
            if name not in known:
                raise CatalogError(f"{file}: {where}: unknown placeholder {{{name}}}")


def _check_kinds(pattern: Pattern, file: Path) -> None:
    """Names that must exist: engines, probe and study kinds, `needs`; each kind's table."""
    kinds = pattern.kinds
    for engine in pattern.engine_names():
        if engine not in kinds.engines:
            known = ", ".join(kinds.engines)
            raise CatalogError(f"{file}: scenario.{engine}: no such load engine (known: {known})")
    groups: list[tuple[str, Mapping[str, Support | Implementation]]] = [
        ("support", pattern.support),
        ("implementations", pattern.implementations),
    ]
    for group, members in groups:
        for name, member in members.items():
            where = f"{file}: {group}.{name}.probe"
            model = kinds.probes.get(member.probe.kind)
            if model is None:
                raise CatalogError(f"{where}.kind: no such probe {member.probe.kind!r} "
                                   f"(known: {', '.join(kinds.probes)})")  # fmt: skip
            try:
                model.model_validate(member.probe.rest())
            except ValidationError as e:
                raise CatalogError(f"{where}.{first_error(e)}") from None
    for name, impl in pattern.implementations.items():
        for need in impl.needs:
            if need not in pattern.support:
                raise CatalogError(f"{file}: implementations.{name}.needs: no support {need!r}")
    if pattern.selfcheck and pattern.selfcheck.implementation not in pattern.implementations:
        raise CatalogError(f"{file}: selfcheck.implementation: no implementation "
                           f"{pattern.selfcheck.implementation!r}")  # fmt: skip
    for name, table in pattern.studies.items():
        if table.kind not in kinds.studies:
            raise CatalogError(f"{file}: studies.{name}.kind: no such study {table.kind!r} "
                               f"(known: {', '.join(kinds.studies)})")  # fmt: skip


def template_values(
    pattern: Pattern,
    params: Mapping[str, ParamValue],
    *,
    port: int | None = None,
    port_offset: int = 0,
    python: str = "python",
) -> dict[str, object]:
    """What `{placeholders}` stand for: the parameters, the built-in names, and each support's
    addresses, its ports shifted by `port_offset` (a run's; 0 when checking tables)."""
    values: dict[str, object] = {**params, "python": python, "root": pattern.root}
    values["port"] = port if port is not None else ""
    values["metrics_port"] = ""  # the implementation's own metrics port, when it has one
    for name, support in pattern.support.items():
        ports = [p + port_offset for p in support.ports]
        values[f"{name}_urls"] = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        values[f"{name}_addrs"] = ",".join(f"127.0.0.1:{p}" for p in ports)
        values[f"{name}_port"] = ports[0]
    return values


def _check_profiles(pattern: Pattern, file: Path) -> None:
    for profile in ("default", *pattern.profiles):
        where = "params" if profile == "default" else f"profiles.{profile}"
        try:
            params = pattern.resolve_params(profile, {})
        except CatalogError as e:
            raise CatalogError(f"{file}: {where}: {str(e).removeprefix('--param ')}") from None
        values = template_values(pattern, params)
        for engine in pattern.scenario.engines():
            try:
                pattern.engine_table(engine, values)
            except ValidationError as e:
                raise CatalogError(f"{file}: scenario.{engine}.{first_error(e)}") from None
        for impl_name, impl in pattern.implementations.items():
            for engine in impl.scenario:
                try:
                    pattern.engine_table(engine, values, impl_name)
                except ValidationError as e:
                    where = f"implementations.{impl_name}.scenario.{engine}"
                    raise CatalogError(f"{file}: {where}.{first_error(e)}") from None
        for name in pattern.studies:
            try:
                pattern.study_spec(name, values)
            except ValidationError as e:
                raise CatalogError(f"{file}: studies.{name}.{first_error(e)}") from None


def load_pattern(file: Path, root: Path, kinds: Kinds | None = None) -> Pattern:
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
    _check_templates(pattern, raw, display)
    if kinds is not None:
        _check_kinds(pattern, display)
        _check_profiles(pattern, display)
    return pattern


def load_catalog(root: Path, kinds: Kinds | None = None) -> dict[str, Pattern]:
    """Every pattern under root/systems, by name; with `kinds`, every kind's table checked."""
    files = sorted((root / "systems").glob("*/system.toml"))
    return {p.pattern: p for p in (load_pattern(f, root, kinds) for f in files)}
