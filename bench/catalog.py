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

from bench.catalog_tables import HTTP_READY as HTTP_READY
from bench.catalog_tables import Build as Build
from bench.catalog_tables import Implementation as Implementation
from bench.catalog_tables import KindTable as KindTable
from bench.catalog_tables import Metrics as Metrics
from bench.catalog_tables import ScenarioTables as ScenarioTables
from bench.catalog_tables import SelfCheckTable as SelfCheckTable
from bench.catalog_tables import StudyTable as StudyTable
from bench.catalog_tables import Support as Support
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
        values[f"{name}_metrics_port"] = support.scraped_port() + port_offset
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
