"""Variants (`vary`), the `workload` parameter and a support's metrics: what the catalog and the
run make of them (pure logic, on a synthetic pattern)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog import CatalogError, load_pattern, template_values
from bench.models import ParamValue
from bench.variants import expand, parse_vary
from tests.unit.test_catalog import KINDS, MINIMAL, error_of, write

WITH_SETS = MINIMAL.replace(
    "[params]",
    '[scenarios.other.loadgen]\npath = "/other/{k}"\n\n[params]\npool = 10\nmode = "any"',
)


def test_vary_parses_each_group_typed_like_its_default() -> None:
    params: dict[str, ParamValue] = {"pool": 10, "mode": "any", "ratio": 0.5, "flag": False}
    assert parse_vary("pool=1,4 mode=any,each", params) == [
        ("pool", [1, 4]), ("mode", ["any", "each"])
    ]  # fmt: skip
    assert parse_vary("ratio=0.25 flag=true", params) == [("ratio", [0.25]), ("flag", [True])]
    assert parse_vary("", params) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("pool", "not <param>=<value>"),
        ("size=1,2", "'size' is not a parameter"),
        ("pool=1,x", "vary: "),
        ("pool=1 pool=2", "given twice"),
        ("pool=1,1", "repeats a value"),
        ("rate=1,2", "shapes the run"),
    ],
)
def test_vary_refuses_what_it_cannot_use(text: str, problem: str) -> None:
    params: dict[str, ParamValue] = {"pool": 10, "rate": 100.0}
    with pytest.raises(CatalogError, match=problem):
        parse_vary(text, params)


def test_every_implementation_becomes_one_variant_per_combination(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, WITH_SETS), tmp_path, KINDS)
    params = {**pattern.resolve_params("default", {}), "vary": "pool=1,4 mode=any,each"}
    expanded, names, per_name = expand(pattern, ["one"], params)
    assert names == ["one@pool=1,mode=any", "one@pool=1,mode=each", "one@pool=4,mode=any",
                     "one@pool=4,mode=each"]  # fmt: skip
    variant = expanded.implementations["one@pool=4,mode=each"]
    assert variant.labels == {"pool": "4", "mode": "each"}
    assert variant.command == pattern.implementations["one"].command
    assert per_name["one@pool=4,mode=each"] == {"pool": 4, "mode": "each"}
    # Without vary, nothing changes.
    assert expand(pattern, ["one"], {**params, "vary": ""}) == (pattern, ["one"], {})


def test_a_workload_gives_every_implementation_its_tables(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, WITH_SETS), tmp_path, KINDS)
    params = pattern.resolve_params("default", {"workload": "other"})
    table = pattern.engine_table("loadgen", template_values(pattern, params), "one")
    assert table.model_dump()["path"] == "/other/4"
    with pytest.raises(CatalogError, match=r"workload: no \[scenarios.nope\] \(known: other\)"):
        pattern.engine_table("loadgen", {**template_values(pattern, params), "workload": "nope"})


def test_a_profile_with_a_bad_workload_or_vary_is_refused(tmp_path: Path) -> None:
    bad_workload = WITH_SETS + '\n[profiles.w]\nworkload = "nope"\n'
    assert "profiles.w: " in error_of(tmp_path / "a", bad_workload)
    bad_vary = WITH_SETS + '\n[profiles.v]\nvary = "size=1,2"\n'
    assert "profiles.v.vary: 'size' is not a parameter" in error_of(tmp_path / "b", bad_vary)


def test_a_support_serves_metrics_on_one_of_its_ports(tmp_path: Path) -> None:
    good = MINIMAL.replace(
        "ports = [9001, 9002]", "ports = [9001, 9002]\nmetrics = { port = 9002 }"
    )
    pattern = load_pattern(write(tmp_path / "a", good), tmp_path / "a", KINDS)
    values = template_values(pattern, pattern.resolve_params("default", {}), port_offset=10)
    assert values["sim_metrics_port"] == 9012
    assert values["sim_port"] == 9011
    bad = MINIMAL.replace("ports = [9001, 9002]", "ports = [9001, 9002]\nmetrics = { port = 9003 }")
    assert "support.sim: Value error, metrics.port: 9003 is not one of ports [9001, 9002]" in (
        error_of(tmp_path / "b", bad)
    )
