"""Variants: one implementation measured at several values of its parameters, side by side.

The `vary` parameter names parameters of the pattern and their values, one parameter per
space-separated group:

    vary = "pool_size=1,4,16,32"                 # a pool-size sweep
    vary = "queries=1,5,10,20 mode=any,each"     # their product: 8 variants

Each implementation the run measures becomes one variant per combination, named
`<implementation>@<param>=<value>[,<param>=<value>]` (`python-asyncpg@pool_size=4`), started with
those parameters in place of the run's and labelled with them (`labels = {pool_size = "4"}`), so
the report lists each variant with its knee and contrasts those that differ in one value only.
Variants are interleaved in trials as implementations are; the time budget counts each.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from bench.catalog import CatalogError, Pattern
from bench.models import ParamValue
from bench.params import ParamError, parse_param

#: The parameters a variant may not change: they shape the run, not the system.
RUN_SHAPED = frozenset(
    {
        "vary",
        "implementations",
        "engine",
        "load_model",
        "rate",
        "rates",
        "trials",
        "slo",
        "find_max",
        "warmup_s",
        "duration_s",
        "cooldown_s",
        "budget_s",
        "arrival",
    }
)


def parse_vary(text: str, params: Mapping[str, ParamValue]) -> list[tuple[str, list[ParamValue]]]:
    """`"a=1,2 b=x,y"` → [("a", [1, 2]), ("b", ["x", "y"])], each value typed like the default."""
    dims: list[tuple[str, list[ParamValue]]] = []
    for group in text.split():
        name, sep, values = group.partition("=")
        if not sep or not name or not values:
            raise CatalogError(f"vary: {group!r} is not <param>=<value>,<value>…")
        if name not in params:
            raise CatalogError(f"vary: {name!r} is not a parameter of the pattern")
        if name in RUN_SHAPED:
            raise CatalogError(f"vary: {name!r} shapes the run, not the system; give it alone")
        if name in (d[0] for d in dims):
            raise CatalogError(f"vary: {name!r} is given twice")
        try:
            typed = [parse_param(name, v, params[name]) for v in values.split(",") if v]
        except ParamError as e:
            raise CatalogError(f"vary: {e}") from None
        if len(set(map(str, typed))) != len(typed):
            raise CatalogError(f"vary: {name!r} repeats a value")
        dims.append((name, typed))
    return dims


def _text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand(
    pattern: Pattern, names: Sequence[str], params: Mapping[str, ParamValue]
) -> tuple[Pattern, list[str], dict[str, dict[str, ParamValue]]]:
    """The pattern with every variant as an implementation of its own, the variants' names in
    the run's order, and each variant's values of the varied parameters (what it runs with in
    place of the run's). Without `vary`, all as given."""
    dims = parse_vary(str(params.get("vary") or ""), params)
    if not dims:
        return pattern, list(names), {}
    implementations = dict(pattern.implementations)
    variant_names: list[str] = []
    variant_params: dict[str, dict[str, ParamValue]] = {}
    for name in names:
        base = pattern.implementations[name]
        for combo in itertools.product(*(values for _, values in dims)):
            chosen = {param: value for (param, _), value in zip(dims, combo, strict=True)}
            suffix = ",".join(f"{p}={_text(v)}" for p, v in chosen.items())
            variant = f"{name}@{suffix}"
            implementations[variant] = base.model_copy(
                update={
                    "labels": {**base.labels, **{p: _text(v) for p, v in chosen.items()}},
                    "description": f"{base.description} ({suffix.replace(',', ', ')})",
                }
            )
            variant_names.append(variant)
            variant_params[variant] = chosen
    return (
        pattern.model_copy(update={"implementations": implementations}),
        variant_names,
        variant_params,
    )
