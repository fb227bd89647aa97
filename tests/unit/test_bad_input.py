"""Bad input is refused where it is read, in one line naming the flag or the file and field: the
command line's argument types, the parameters' own checks, the catalog, the load target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cli
from bench.catalog import CatalogError, load_pattern
from bench.engines import target
from bench.engines.url import problems, summary, text
from bench.params import ParamError, check_slo, rate_list
from tests.unit.conftest import make_load
from tests.unit.test_catalog import KINDS, MINIMAL, error_of, write

ONLY_CPU = max(os.sched_getaffinity(0))
MISSING_CPU = ONLY_CPU + 64


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line the command line answers bad arguments with (exit 2)."""
    with pytest.raises(SystemExit) as done:
        cli.parser().parse_args(list(args))
    assert done.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "x", "--slo", "garbage"], "argument --slo: SLO clause 'garbage' is neither"),
        (["run", "x", "--slo", "p99<=abc"], "argument --slo: SLO clause 'p99<=abc' is neither"),
        (["run", "x", "--rates", "100,,200"], "argument --rates: expected positive rates"),
        (["run", "x", "--rates", "100,nan"], "argument --rates: expected positive rates"),
        (["run", "x", "--rate", "nan"], "argument --rate: expected a positive number"),
        (["run", "x", "--rate", "inf"], "argument --rate: expected a positive number"),
        (["run", "x", "--rate", "0"], "argument --rate: expected a positive number"),
        (["run", "x", "--trials", "0"], "argument --trials: expected a whole number of trials"),
        (["run", "x", "--port-offset", "-1"], "argument --port-offset: expected an offset"),
        (["run", "x", "--port-offset", "70000"], "argument --port-offset: expected an offset"),
        (["run", "x", "--cpus-system", str(MISSING_CPU)], "argument --cpus-system: CPUs"),
        (["run", "x", "--cpus-loadgen", str(MISSING_CPU)], "argument --cpus-loadgen: CPUs"),
        (["load", "https://127.0.0.1:1/"], "argument url: https://127.0.0.1:1/: https://"),
        (["load", "ftp://127.0.0.1/"], "argument url: ftp://127.0.0.1/: expected an http://"),
        (["load", "http://h:0/"], "argument url: http://h:0/: the port is not a number"),
        (["load", "http://h/", "--rate", "nan"], "argument --rate: expected a positive number"),
        (["load", "http://h/", "--rate", "inf"], "argument --rate: expected a positive number"),
        (["load", "http://h/", "--rate", "-3"], "argument --rate: expected a positive number"),
        (["load", "http://h/", "--duration", "0"], "argument --duration: expected a duration"),
        (["load", "http://h/", "--warmup", "-1"], "argument --warmup: '-1' is not a duration"),
        (["load", "http://h/", "--users", "0"], "argument --users: expected a whole number"),
        (["load", "http://h/", "--max-in-flight", "x"], "argument --max-in-flight: expected"),
        (["load", "http://h/", "--cpus", str(MISSING_CPU)], "argument --cpus: CPUs"),
        (["load", "http://h/", "--grpc-request", "[1]"], "argument --grpc-request: expected a"),
        (["gate", "--base", "a", "--port-offset", "x"], "argument --port-offset: expected"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    line = refusal(capsys, *args)
    assert line.startswith(f"patternbench {args[0]}: {said}"), line


def test_json_into_a_missing_folder_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "out.json"
    line = refusal(capsys, "load", "http://h/", "--json", str(out))
    assert line.startswith(f"patternbench load: argument --json: no such folder: {out.parent}")
    assert not (tmp_path / "no").exists()
    assert "is a folder" in refusal(capsys, "load", "http://h/", "--json", str(tmp_path))


def test_good_flags_pass_and_run_shorthands_stay_param_text(tmp_path: Path) -> None:
    args = cli.parser().parse_args(
        ["run", "x", "--rate", "250", "--rates", "100,200", "--trials", "3",
         "--slo", "p99<=20ms", "--cpus-system", str(ONLY_CPU)]
    )  # fmt: skip
    assert (args.load_rate, args.load_rates, args.load_trials) == ("250", "100,200", "3")
    assert (args.load_slo, args.cpus_system) == ("p99<=20ms", [ONLY_CPU])
    args = cli.parser().parse_args(
        ["load", "grpc://h:5", "--grpc-request", '{"a": 1}', "--json", str(tmp_path / "o.json")]
    )
    assert (args.grpc_request, args.json) == ({"a": 1}, tmp_path / "o.json")


@pytest.mark.parametrize("rates", ["100,,200", "100,", ",100", "nan", "100,inf", "0", "-1"])
def test_rate_lists_are_positive_numbers_without_gaps(rates: str) -> None:
    with pytest.raises(ParamError, match=rf"^--param rates={rates}: "):
        rate_list(rates)


def test_an_empty_rate_list_is_no_sweep() -> None:
    assert rate_list("") == []
    assert rate_list(" 500, 1000 ") == [500.0, 1000.0]


@pytest.mark.parametrize("slo", ["garbage", "p99<=abc", "p99<=50ms,p99<=60ms", "errors<=x%"])
def test_a_bad_slo_is_a_param_error(slo: str) -> None:
    with pytest.raises(ParamError, match=r"^--param slo="):
        check_slo(slo)
    check_slo("")  # no SLO


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rate": "nan"}, "--param rate=nan: must be a finite number"),
        ({"rate": "inf"}, "--param rate=inf: must be a finite number"),
        ({"users": "0"}, "--param users=0: must be positive"),
        ({"rates": "100,,200"}, "--param rates=100,,200: expected rates like 500,1000,2000"),
        ({"slo": "garbage"}, "--param slo=garbage: SLO clause 'garbage' is neither"),
    ],
)
def test_params_given_with_param_are_checked(
    tmp_path: Path, override: dict[str, str], message: str
) -> None:
    pattern = load_pattern(write(tmp_path, MINIMAL), tmp_path, KINDS)
    with pytest.raises(CatalogError) as err:
        pattern.resolve_params("default", override)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('slo = "p99<=50ms,errors<=0.1%"', 'slo = "garbage"', "params: slo=garbage: SLO clause"),
        ('slo = "p99<=50ms,errors<=0.1%"', 'slo = "p99<=abc"', "params: slo=p99<=abc: SLO"),
        ('rates = ""', 'rates = "100,,200"', "params: rates=100,,200: expected rates like"),
        ("rate = 100.0", "rate = nan", "params: rate=nan: must be a finite number"),
        ("rate = 100.0", "rate = inf", "params: rate=inf: must be a finite number"),
    ],
)
def test_a_bad_load_param_in_a_system_toml_names_file_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in MINIMAL
    found = error_of(tmp_path, MINIMAL.replace(old, new))
    assert found.startswith(f"systems/demo/system.toml: {message}"), found


def test_a_missing_vectors_file_is_refused_when_the_catalog_is_read(tmp_path: Path) -> None:
    text = MINIMAL.replace('description = "d"\n', 'description = "d"\nvectors = "vectors.json"\n')
    message = error_of(tmp_path, text)
    assert message == "systems/demo/system.toml: vectors: no such file systems/demo/vectors.json"
    (tmp_path / "systems" / "demo" / "vectors.json").write_text("{}")
    assert load_pattern(tmp_path / "systems" / "demo" / "system.toml", tmp_path).vectors


def test_load_targets_are_http_or_grpc_urls() -> None:
    assert target.split("http://127.0.0.1:8080/a?b=1") == ("http", "127.0.0.1", 8080, "/a?b=1")
    assert target.split("grpc://h") == ("grpc", "h", 50051, "/")
    for bad in ("https://h/", "h:80", "http:///x", "http://h:99999/", "http://h:x/"):
        with pytest.raises(ValueError, match=rf"^{bad}: "):
            target.split(bad)


def test_an_unreachable_target_is_said_in_one_line() -> None:
    with pytest.raises(target.Unreachable, match=r"^http://127.0.0.1:1/: cannot connect to "):
        target.check_reachable("http://127.0.0.1:1/", timeout_s=2)


def test_a_window_of_mostly_errors_says_so_first() -> None:
    load = make_load([1000] * 100, errors=60)  # 60 of 100 failed with HTTP 503
    assert problems(load) == (
        ["mostly errors: 60% of the 100 requests failed (HTTP 503 60); the latencies are mostly "
         "theirs"],
        False,
    )  # fmt: skip
    data = summary("http://h/", load)
    assert (data["error_share"], data["failed"]) == (0.6, False)
    lines = text(data).splitlines()
    assert lines[0].startswith("ERRORS: mostly errors: 60% of the 100 requests failed")
    assert problems(make_load([1000] * 100, errors=50)) == ([], False)  # half is not most


def test_a_window_of_mostly_connection_errors_failed() -> None:
    load = make_load([1000] * 10, errors=10).model_copy(update={"error_kinds": {"connection": 10}})
    data = summary("http://h/", load)
    assert data["failed"]
    assert data["problems"] == [
        "the target did not answer: 100% of the 10 requests failed to connect (connection 10)"
    ]
    assert text(data).splitlines()[0] == f"FAILED: {data['problems'][0]}"
