"""The catalog of systems: every `systems/<pattern>/system.toml`, parsed and checked.

Reading the catalog starts nothing. A malformed file raises CatalogError whose message is one line
naming the file and the field, e.g. `systems/fanout/system.toml: implementations.go.port: Input
should be a valid integer`.

Commands are lists of strings with `{placeholders}`: every parameter of the pattern, plus
`python` (the harness's interpreter), `root` (the repository), `port` (the implementation's own),
and for each support process `S`, `S_urls` (comma-separated `http://127.0.0.1:PORT`) and
`S_addrs` (`127.0.0.1:PORT`, comma-separated).
"""

from __future__ import annotations

import string
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.models import ParamValue, first_error

#: Parameters every pattern declares, because the harness and its load engines need them.
LOAD_PARAMS = (
    "engine",  # locust | loadgen
    "load_model",  # open-loop | closed-loop (closed-loop: locust only)
    "rate",  # open-loop target, requests/s
    "rates",  # "" or a sweep, "500,1000,2000"
    "arrival",  # constant | poisson
    "trials",  # repeated trials per implementation and rate, interleaved
    "slo",  # e.g. "p99<=50ms,errors<=0.1%": judges sweep points and the max-rate search
    "find_max",  # search the highest rate meeting the SLO instead of a fixed sweep
    "users",  # closed-loop Locust users ...
    "spawn_rate",  # ... and how fast they start
    "duration_s",
    "warmup_s",
)
#: Parameters a pattern with an [inprocess] table declares (bench/inprocess.py reads them).
INPROCESS_PARAMS = (
    "inprocess",  # false: skip the study
    "inprocess_scaling_ms",  # task size of the throughput-vs-workers figures
    "inprocess_task_ms",  # "0.1,1,10,100": task sizes of the crossover
    "inprocess_hash_sizes",  # hash block sizes, bytes
    "inprocess_batch_s",  # one batch is about this much of one worker's time
    "inprocess_processes",  # pyperf worker processes per configuration
    "inprocess_values",  # timed batches per pyperf process
    "inprocess_go_count",  # go test -bench -count
)
_CHOICES = {
    "engine": ("locust", "loadgen"),
    "load_model": ("open-loop", "closed-loop"),
    "arrival": ("constant", "poisson"),
}
BUILTIN_NAMES = ("python", "root", "port")


class CatalogError(Exception):
    """A system.toml (or a parameter given for it) that cannot be used; the message is one line."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Build(_Model):
    """A command that builds what an implementation runs; it runs in `dir`, relative to root."""

    dir: str = "."
    command: list[str] = Field(min_length=1)


class Support(_Model):
    """A process the implementations need (e.g. simulated backends), started before each."""

    description: str = ""
    build: Build | None = None
    command: list[str] = Field(min_length=1)
    ports: list[int] = Field(min_length=1)
    ready: str = "/healthz"
    ready_timeout_s: float = 20.0


class Implementation(_Model):
    language: str
    description: str = ""
    build: Build | None = None
    command: list[str] = Field(min_length=1, description="the program; the pattern's args follow")
    port: int = Field(ge=1024, le=65535)
    ready: str = "/healthz"
    ready_timeout_s: float = 20.0


class ScenarioSpec(_Model):
    locustfile: str
    args: list[str] = Field(default=[], description="extra Locust arguments")
    closed_loop_user: str = Field(description="the locustfile's closed-loop User class")
    open_loop_user: str = Field(description="its open_loop_user() class")
    loadgen_path: str = Field(description="loadgen's request path; {{rand:N}} → 0..N-1")
    server_latency_metric: str | None = Field(
        default=None, description="the system's Prometheus latency histogram (seconds)"
    )


class InProcessSpec(_Model):
    """An in-process pool study (bench/inprocess.py): the pools timed without a network.

    Its knobs are parameters (`inprocess`, `inprocess_*` in [params]) so that profiles and
    `--param` set them like any other.
    """

    pyperf_script: str = Field(description="the pyperf benchmark, relative to the root")
    go_dir: str = "go"
    go_package: str = Field(description="the Go package holding the benchmark, e.g. ./internal/x")
    go_benchmark: str = Field(description="the benchmark function, e.g. BenchmarkPool")
    pools: list[Literal["sync", "threads", "processes"]] = Field(min_length=1)


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
    inprocess: InProcessSpec | None = None
    scenario: ScenarioSpec
    args: list[str] = Field(
        default=[], description="the contract's flags, for every implementation"
    )
    params: dict[str, ParamValue]
    profiles: dict[str, dict[str, ParamValue]] = {}
    support: dict[str, Support] = {}
    implementations: dict[str, Implementation] = Field(min_length=1)
    root: Path = Field(default=Path("."), exclude=True)
    folder: Path = Field(default=Path("."), exclude=True)

    @field_validator("support")
    @classmethod
    def _support_names(cls, value: dict[str, Support]) -> dict[str, Support]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"support name {name!r} must be an identifier")
        return value

    def template_names(self) -> set[str]:
        names = set(self.params) | set(BUILTIN_NAMES)
        for name in self.support:
            names |= {f"{name}_urls", f"{name}_addrs"}
        return names

    def resolve_params(self, profile: str, overrides: dict[str, str]) -> dict[str, ParamValue]:
        """Defaults, then the profile, then `--param k=v` overrides, each typed like its default."""
        if profile != "default" and profile not in self.profiles:
            known = ", ".join(["default", *sorted(self.profiles)])
            raise CatalogError(f"{self.pattern}: no profile {profile!r} (known: {known})")
        params = dict(self.params)
        params.update(self.profiles.get(profile, {}))
        for key, text in overrides.items():
            if key not in params:
                known = ", ".join(sorted(params))
                raise CatalogError(f"--param {key}: {self.pattern} has no such parameter ({known})")
            params[key] = parse_param(key, text, params[key])
        check_load_params(params)
        return params


def rate_list(text: str) -> list[float]:
    """`500,1000` → [500.0, 1000.0]; every rate positive."""
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CatalogError(f"--param rates={text}: expected rates like 500,1000,2000") from None
    if any(r <= 0 for r in rates):
        raise CatalogError(f"--param rates={text}: every rate must be positive")
    return rates


def check_load_params(params: dict[str, ParamValue]) -> None:
    """The harness's own parameters, checked once they are resolved."""
    for key, allowed in _CHOICES.items():
        if params[key] not in allowed:
            raise CatalogError(f"--param {key}={params[key]}: expected one of {', '.join(allowed)}")
    for key in ("trials", "users", "duration_s", "rate"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise CatalogError(f"--param {key}={value}: must be a positive number")
    warmup = params["warmup_s"]
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or warmup < 0:
        raise CatalogError(f"--param warmup_s={warmup}: must be zero or more")
    if params["engine"] == "loadgen" and params["load_model"] == "closed-loop":
        raise CatalogError("--param engine=loadgen: loadgen is open-loop only (use locust)")
    if params["load_model"] == "closed-loop" and (params["rates"] or params["find_max"]):
        raise CatalogError("rate sweeps and the max-rate search need open-loop load")
    rate_list(str(params["rates"]))


def parse_param(key: str, text: str, like: ParamValue) -> ParamValue:
    """Parse a command-line value to the type of the parameter's default."""
    try:
        if isinstance(like, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        raise CatalogError(
            f"--param {key}={text}: expected {type(like).__name__} like {like!r}"
        ) from None
    return text


def _placeholders(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _check_templates(pattern: Pattern, file: Path) -> None:
    known = pattern.template_names()
    lists: list[tuple[str, list[str]]] = [("args", pattern.args)]
    lists.append(("scenario.args", pattern.scenario.args))
    lists.append(("scenario.loadgen_path", [pattern.scenario.loadgen_path]))
    lists += [(f"support.{n}.command", s.command) for n, s in pattern.support.items()]
    lists += [
        (f"implementations.{n}.command", i.command) for n, i in pattern.implementations.items()
    ]
    for where, templates in lists:
        for index, template in enumerate(templates):
            try:
                fields = _placeholders(template)
            except ValueError as e:
                raise CatalogError(f"{file}: {where}[{index}]: {e}") from None
            for field in fields:
                if field not in known:
                    raise CatalogError(f"{file}: {where}[{index}]: unknown placeholder {{{field}}}")


def load_pattern(file: Path, root: Path) -> Pattern:
    display = file.relative_to(root) if file.is_relative_to(root) else file
    try:
        raw: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise CatalogError(f"{display}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{display}: not valid TOML: {e}") from None
    try:
        pattern = Pattern.model_validate({**raw, "root": root, "folder": file.parent})
    except ValidationError as e:
        raise CatalogError(f"{display}: {first_error(e)}") from None
    if pattern.pattern != file.parent.name:
        raise CatalogError(
            f"{display}: pattern: {pattern.pattern!r} must match its folder {file.parent.name!r}"
        )
    required = LOAD_PARAMS + (INPROCESS_PARAMS if pattern.inprocess else ())
    missing = [p for p in required if p not in pattern.params]
    if missing:
        raise CatalogError(f"{display}: params: missing {', '.join(missing)}")
    for profile, values in pattern.profiles.items():
        for key in values:
            if key not in pattern.params:
                raise CatalogError(f"{display}: profiles.{profile}.{key}: not a declared param")
    _check_templates(pattern, display)
    for profile in ("default", *pattern.profiles):
        try:
            pattern.resolve_params(profile, {})
        except CatalogError as e:
            where = "params" if profile == "default" else f"profiles.{profile}"
            raise CatalogError(f"{display}: {where}: {str(e).removeprefix('--param ')}") from None
    return pattern


def load_catalog(root: Path) -> dict[str, Pattern]:
    """Every pattern under root/systems, by name."""
    files = sorted((root / "systems").glob("*/system.toml"))
    return {p.pattern: p for p in (load_pattern(f, root) for f in files)}


def render(templates: list[str], values: dict[str, object]) -> list[str]:
    return [t.format_map(values) for t in templates]
