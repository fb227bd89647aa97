from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog import CatalogError, load_catalog, load_pattern, template_values
from bench.cli import PARTS
from bench.params import ParamError, parse_param
from bench.templates import render, render_table

KINDS = PARTS.kinds()

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
pattern = "demo"
description = "d"
args = ["--listen", "127.0.0.1:{port}", "--k", "{k}", "--backends", "{sim_urls}"]

[scenario.loadgen]
path = "/demo/{{rand:{k}}}"

[scenario.locust]
locustfile = "scenarios/locust/demo.py"
args = ["--rate", "{k}"]
closed_loop_user = "DemoUser"
open_loop_user = "OpenLoopDemo"

[params]
k = 4
ratio = 0.5
name = "x"
flag = false
engine = "loadgen"
load_model = "open-loop"
rate = 100.0
rates = ""
arrival = "constant"
trials = 3
slo = "p99<=50ms,errors<=0.1%"
find_max = false
users = 2
spawn_rate = 2.0
warmup_s = 1.0
duration_s = 2.0

[profiles.quick]
duration_s = 1.0

[support.sim]
command = ["sim", "--listen", "{sim_addrs}"]
ports = [9001, 9002]

[implementations.one]
language = "go"
command = ["bin/one"]
port = 8001
needs = ["sim"]
"""


def write(tmp_path: Path, text: str, folder: str = "demo") -> Path:
    path = tmp_path / "systems" / folder / "system.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, folder: str = "demo") -> str:
    path = write(tmp_path, text, folder)
    with pytest.raises(CatalogError) as err:
        load_pattern(path, tmp_path, KINDS)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_repository_catalog_loads() -> None:
    catalog = load_catalog(REPO, KINDS)
    assert "fanout" in catalog
    assert set(catalog["fanout"].implementations) >= {"go", "python-asyncio"}


def test_minimal_pattern_and_templates(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    assert pattern.support["sim"].ports == [9001, 9002]
    values = {"port": 8001, "k": 4, "sim_urls": "http://a,http://b"}
    assert render(pattern.args, values)[-1] == "http://a,http://b"


def test_profiles_and_overrides_are_typed_like_defaults(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    params = pattern.resolve_params("quick", {"k": "8", "ratio": "0.25", "flag": "yes"})
    assert params["k"] == 8
    assert params["ratio"] == 0.25
    assert params["flag"] is True
    assert params["duration_s"] == 1.0


def test_unknown_param_and_bad_value_are_one_line_errors(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    with pytest.raises(
        CatalogError,
        match=r"--param nope: demo has no such parameter \(arrival, budget_s, cooldown_s, dura",
    ):
        pattern.resolve_params("default", {"nope": "1"})
    with pytest.raises(CatalogError, match=r"--param k=four: expected int like 4"):
        pattern.resolve_params("default", {"k": "four"})
    with pytest.raises(CatalogError, match=r"no profile 'huge' \(known: default, quick\)"):
        pattern.resolve_params("huge", {})


def test_parse_param_rejects_non_booleans() -> None:
    with pytest.raises(ParamError, match="expected bool"):
        parse_param("flag", "maybe", False)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "\nport = = 3\n")
    assert message.startswith("systems/demo/system.toml: not valid TOML:")


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace("port = 8001", 'port = "eighty"'))
    assert message.startswith("systems/demo/system.toml: implementations.one.port:")


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace('language = "go"\n', ""))
    assert message == "systems/demo/system.toml: implementations.one.language: Field required"


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace('language = "go"', 'language = "go"\nprot = 1'))
    assert message.startswith("systems/demo/system.toml: implementations.one.prot:")


def test_unknown_placeholder_names_command_and_index(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, MINIMAL.replace('command = ["bin/one"]', 'command = ["bin/{nope}"]')
    )
    assert message == (
        "systems/demo/system.toml: implementations.one.command[0]: unknown placeholder {nope}"
    )


def test_missing_load_params(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace("users = 2\n", ""))
    assert message == "systems/demo/system.toml: params: missing users"
    message = error_of(tmp_path / "x", MINIMAL.replace('engine = "loadgen"\n', ""))
    assert message == "systems/demo/system.toml: params: missing engine"


def test_pattern_name_must_match_folder(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL, folder="other")
    assert "pattern: 'demo' must match its folder 'other'" in message


def test_profile_may_only_set_declared_params(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace("duration_s = 1.0\n", "durration_s = 1.0\n"))
    assert message == "systems/demo/system.toml: profiles.quick.durration_s: not a declared param"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"engine": "wrk"}, "--param engine=wrk: the pattern has no [scenario.wrk] table"),
        ({"arrival": "bursty"}, "--param arrival=bursty: expected one of constant, poisson"),
        ({"trials": "0"}, "--param trials=0: must be positive"),
        ({"rate": "-5"}, "--param rate=-5.0: must be positive"),
        ({"rates": "100,fast"}, "--param rates=100,fast: expected rates like 500,1000,2000"),
        ({"load_model": "closed-loop"}, "--param engine=loadgen: loadgen is open-loop only"),
        ({"duration_s": "fast"}, "--param duration_s=fast: expected float like 500ms, 30s, 2m"),
        ({"warmup_s": "-1"}, "expected float like 500ms"),
        ({"engine": "locust", "load_model": "closed-loop", "rates": "1,2"}, "need open-loop load"),
    ],
)
def test_load_params_are_checked(tmp_path: Path, override: dict[str, str], message: str) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    with pytest.raises(CatalogError) as err:
        pattern.resolve_params("default", override)
    assert message in str(err.value)


def test_a_bad_load_param_in_a_profile_names_the_profile(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace("duration_s = 1.0\n", "trials = 0\n"))
    assert message == "systems/demo/system.toml: profiles.quick: trials=0: must be positive"


def test_durations_take_units(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    params = pattern.resolve_params("default", {"duration_s": "500ms", "warmup_s": "2m"})
    assert (params["duration_s"], params["warmup_s"]) == (0.5, 120.0)
    assert pattern.resolve_params("default", {"duration_s": "30"})["duration_s"] == 30.0
    text = MINIMAL.replace("duration_s = 1.0\n", 'duration_s = "1500ms"\n')
    quick = load_pattern(write(tmp_path / "u", text), tmp_path / "u", KINDS)
    assert quick.resolve_params("quick", {})["duration_s"] == 1.5


def test_engine_tables_are_checked_by_the_engines_models(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL.replace('path = "/demo/{{rand:{k}}}"', 'path = "demo"'))
    assert message.startswith("systems/demo/system.toml: scenario.loadgen.path: String should")
    message = error_of(tmp_path / "a", MINIMAL.replace("[scenario.loadgen]", "[scenario.wrk]"))
    assert message == (
        "systems/demo/system.toml: scenario.wrk: no such load engine (known: loadgen, locust)"
    )
    message = error_of(tmp_path / "b", MINIMAL.replace('closed_loop_user = "DemoUser"\n', ""))
    assert message == "systems/demo/system.toml: scenario.locust.closed_loop_user: Field required"


def test_an_engine_table_renders_with_the_parameters(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    table = pattern.engine_table("loadgen", {"k": 7})
    assert table.model_dump()["path"] == "/demo/{rand:7}"


def test_probes_needs_and_studies_are_checked(tmp_path: Path) -> None:
    bad_probe = MINIMAL.replace("port = 8001", 'port = 8001\nprobe = { kind = "smtp" }')
    assert error_of(tmp_path / "a", bad_probe) == (
        "systems/demo/system.toml: implementations.one.probe.kind: no such probe 'smtp' "
        "(known: http, grpc, tcp)"
    )
    bad_field = MINIMAL.replace("port = 8001", 'port = 8001\nprobe = { kind = "http", url = "/" }')
    assert error_of(tmp_path / "b", bad_field) == (
        "systems/demo/system.toml: implementations.one.probe.url: Extra inputs are not permitted"
    )
    bad_need = MINIMAL.replace('needs = ["sim"]', 'needs = ["db"]')
    assert error_of(tmp_path / "c", bad_need) == (
        "systems/demo/system.toml: implementations.one.needs: no support 'db'"
    )
    bad_study = MINIMAL + '\n[studies.s]\nkind = "astrology"\n'
    assert error_of(tmp_path / "d", bad_study).startswith(
        "systems/demo/system.toml: studies.s.kind: no such study 'astrology' (known: "
    )


def test_topology_fields_have_their_defaults(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "ports = [9001, 9002]",
        'ports = [9001, 9002]\nscope = "run"\nprobe = { kind = "tcp" }\n'
        'setup = [["sim-setup", "{sim_port}"]]\nreset = [["sim-reset"]]',
    ).replace("port = 8001", "port = 8001\ngpu = true")
    pattern = load_pattern(write(tmp_path, text), tmp_path, KINDS)
    sim, one = pattern.support["sim"], pattern.implementations["one"]
    assert (sim.scope, sim.probe.kind, sim.setup, sim.reset) == (
        "run",
        "tcp",
        [["sim-setup", "{sim_port}"]],
        [["sim-reset"]],
    )
    assert (one.gpu, one.needs, one.probe.kind) == (True, ["sim"], "http")
    endpoint = one.metrics_endpoint()
    assert endpoint is not None
    assert (endpoint.port, endpoint.path) == (None, "/metrics")


def test_a_single_placeholder_keeps_its_type() -> None:
    values = {"flag": False, "n": 3}
    assert render_table({"when": "{flag}", "x": "n={n}", "l": ["{n}"]}, values) == {
        "when": False,
        "x": "n=3",
        "l": ["3"],
    }


OWN_TABLE = """
[implementations.two]
language = "go"
command = ["bin/two"]
port = 8002
probe = {kind = "grpc"}

[implementations.two.scenario.loadgen]
grpc_method = "/demo.Demo/Get"
grpc_request = {id = "u{{rand:{k}}}"}
proto_modules = ["demo_pb2"]
"""


def test_an_implementation_may_bring_its_own_engine_table(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL + OWN_TABLE), tmp_path, KINDS)
    assert pattern.engine_table("loadgen", {"k": 7}, "one").model_dump()["path"] == "/demo/{rand:7}"
    own = pattern.engine_table("loadgen", {"k": 7}, "two").model_dump()
    assert own["grpc_method"] == "/demo.Demo/Get"
    assert own["grpc_request"] == {"id": "u{rand:7}"}
    assert pattern.engine_names() == ["loadgen", "locust"]


def test_an_implementation_s_table_is_checked_and_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + OWN_TABLE.replace('grpc_method = "/demo.Demo/Get"', ""))
    assert message.startswith("systems/demo/system.toml: implementations.two.scenario.loadgen")
    message = error_of(tmp_path / "a", MINIMAL + OWN_TABLE.replace("{k}}}", "{nope}}}"))
    assert "implementations.two.scenario" in message
    assert "unknown placeholder {nope}" in message


SHARED_SET = """
[scenarios.rpc.loadgen]
grpc_method = "/demo.Demo/Get"
grpc_request = { id = "u{{rand:{k}}}" }

[implementations.two]
language = "go"
command = ["bin/two"]
port = 8002
scenario = "rpc"

[implementations.three]
language = "python"
command = ["bin/three"]
port = 8003
scenario = "rpc"
"""


def test_implementations_may_share_a_named_set_of_engine_tables(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL + SHARED_SET), tmp_path, KINDS)
    for name in ("two", "three"):
        own = pattern.engine_table("loadgen", {"k": 7}, name).model_dump()
        assert own["grpc_request"] == {"id": "u{rand:7}"}
    assert pattern.engine_table("loadgen", {"k": 7}, "one").model_dump()["path"] == "/demo/{rand:7}"


def test_a_set_that_does_not_exist_or_does_not_check_is_named(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, MINIMAL + SHARED_SET.replace('scenario = "rpc"\n\n', 'scenario = "nope"\n\n')
    )
    assert "implementations.two.scenario: no [scenarios.nope] (known: rpc)" in message
    message = error_of(
        tmp_path / "a", MINIMAL + SHARED_SET.replace('grpc_method = "/demo.Demo/Get"', "")
    )
    assert message.startswith("systems/demo/system.toml: scenarios.rpc.loadgen")


def test_a_profile_may_name_the_implementations_it_measures(tmp_path: Path) -> None:
    text = MINIMAL.replace("duration_s = 1.0\n", 'duration_s = 1.0\nimplementations = "one"\n', 1)
    pattern = load_pattern(write(tmp_path, text + SHARED_SET), tmp_path, KINDS)
    assert pattern.selected(pattern.resolve_params("quick", {})) == ["one"]
    assert pattern.selected(pattern.resolve_params("default", {})) == ["one", "two", "three"]
    bad = text.replace('implementations = "one"', 'implementations = "one,four"')
    message = error_of(tmp_path / "b", bad + SHARED_SET)
    assert (
        "profiles.quick.implementations: no implementation 'four' (known: one, two, three)"
        in message
    )


def test_a_rate_limit_renders_from_a_parameter_and_is_checked(tmp_path: Path) -> None:
    text = MINIMAL.replace('needs = ["sim"]', 'needs = ["sim"]\nadmits_rps = "{ratio}"')
    pattern = load_pattern(write(tmp_path / "b", text), tmp_path / "b", KINDS)
    values = {"ratio": 0.5}
    assert pattern.admits_rps("one", values) == 0.5
    bad = MINIMAL.replace('needs = ["sim"]', 'needs = ["sim"]\nadmits_rps = "{name}"')
    assert "implementations.one.admits_rps: 'x' is not a rate" in error_of(tmp_path / "d", bad)
    unknown = MINIMAL.replace('needs = ["sim"]', 'needs = ["sim"]\nadmits_rps = "{nope}"')
    assert "implementations.one.admits_rps: unknown placeholder {nope}" in error_of(
        tmp_path / "e", unknown
    )


def test_the_baseline_must_be_an_implementation(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "[scenario.loadgen]", '[scenario]\nbaseline = "two"\n\n[scenario.loadgen]'
    )
    assert error_of(tmp_path / "f", text).endswith("scenario.baseline: no implementation 'two'")
    good = text.replace('baseline = "two"', 'baseline = "one"')
    assert (
        load_pattern(write(tmp_path / "c", good), tmp_path / "c", KINDS).scenario.baseline == "one"
    )


def test_a_support_may_run_on_the_system_s_cpus(tmp_path: Path) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    assert pattern.support["sim"].cpus == "support"
    text = MINIMAL.replace("ports = [9001, 9002]", 'ports = [9001, 9002]\ncpus = "system"')
    assert (
        load_pattern(write(tmp_path / "b", text), tmp_path / "b", KINDS).support["sim"].cpus
        == "system"
    )
    bad = text.replace('cpus = "system"', 'cpus = "all"')
    assert "support.sim.cpus" in error_of(tmp_path / "d", bad)


def test_run_dir_is_a_placeholder(tmp_path: Path) -> None:
    text = MINIMAL.replace('command = ["bin/one"]', 'command = ["bin/one", "--out", "{run_dir}/x"]')
    pattern = load_pattern(write(tmp_path / "b", text), tmp_path / "b", KINDS)
    values = template_values(pattern, pattern.resolve_params("default", {}), run_dir=tmp_path)
    assert render(pattern.implementations["one"].command, values)[-1] == f"{tmp_path}/x"
