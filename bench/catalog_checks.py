"""The catalog's checks of a parsed system.toml: placeholders, kinds, and every profile's tables.

A pattern's tables are checked for every profile after rendering them with its parameters, so a
malformed file fails when the catalog is read, with one line naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.catalog import CatalogError, Implementation, Pattern, Support, template_values
from bench.models import first_error
from bench.templates import placeholders, strings
from bench.variants import parse_vary


def check_templates(pattern: Pattern, raw: dict[str, Any], file: Path) -> None:
    known = pattern.template_names()
    found = strings(raw.get("args", []), "args") + strings(raw.get("scenario", {}), "scenario")
    found += strings(raw.get("studies", {}), "studies")
    found += strings(raw.get("scenarios", {}), "scenarios")
    for group in ("support", "implementations"):
        for name, table in raw.get(group, {}).items():
            for key in ("command", "setup", "reset", "scenario", "admits_rps", "probe"):
                found += strings(table.get(key, []), f"{group}.{name}.{key}")
    for where, template in found:
        try:
            fields = placeholders(template)
        except ValueError as e:
            raise CatalogError(f"{file}: {where}: {e}") from None
        for name in fields:
            if name not in known:
                raise CatalogError(f"{file}: {where}: unknown placeholder {{{name}}}")


def check_kinds(pattern: Pattern, file: Path) -> None:
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
    baseline = pattern.scenario.baseline
    if baseline is not None and baseline not in pattern.implementations:
        raise CatalogError(f"{file}: scenario.baseline: no implementation {baseline!r}")
    if pattern.selfcheck and pattern.selfcheck.implementation not in pattern.implementations:
        raise CatalogError(f"{file}: selfcheck.implementation: no implementation "
                           f"{pattern.selfcheck.implementation!r}")  # fmt: skip
    for name, table in pattern.studies.items():
        if table.kind not in kinds.studies:
            raise CatalogError(f"{file}: studies.{name}.kind: no such study {table.kind!r} "
                               f"(known: {', '.join(kinds.studies)})")  # fmt: skip


def check_profiles(pattern: Pattern, file: Path) -> None:
    for profile in ("default", *pattern.profiles):
        where = "params" if profile == "default" else f"profiles.{profile}"
        try:
            params = pattern.resolve_params(profile, {})
        except CatalogError as e:
            raise CatalogError(f"{file}: {where}: {str(e).removeprefix('--param ')}") from None
        try:
            pattern.selected(params)
        except CatalogError as e:
            raise CatalogError(f"{file}: {where}.{e}") from None
        values = template_values(pattern, params)
        try:
            parse_vary(str(params.get("vary") or ""), params)
        except CatalogError as e:
            raise CatalogError(f"{file}: {where}.{e}") from None
        workload = str(params.get("workload") or "")
        engines = [str(params["engine"])] if workload else pattern.scenario.engines()
        for engine in engines:
            try:
                pattern.engine_table(engine, values)
            except ValidationError as e:
                table = f"scenarios.{workload}.{engine}" if workload else f"scenario.{engine}"
                raise CatalogError(f"{file}: {table}.{first_error(e)}") from None
            except CatalogError as e:
                raise CatalogError(f"{file}: {where}: {str(e).split(': ', 1)[-1]}") from None
        for impl_name, impl in pattern.implementations.items():
            try:
                pattern.admits_rps(impl_name, values)
            except CatalogError as e:
                raise CatalogError(f"{file}: {where}: {e}") from None
            for engine in pattern.own_tables(impl_name):
                try:
                    pattern.engine_table(engine, values, impl_name)
                except ValidationError as e:
                    own = impl.scenario
                    where = (
                        f"scenarios.{own}.{engine}"
                        if isinstance(own, str)
                        else f"implementations.{impl_name}.scenario.{engine}"
                    )
                    raise CatalogError(f"{file}: {where}.{first_error(e)}") from None
        for name in pattern.studies:
            try:
                pattern.study_spec(name, values)
            except ValidationError as e:
                raise CatalogError(f"{file}: studies.{name}.{first_error(e)}") from None
