"""The codec study's pure parts: its table, reading both tools' output, the stored layout and the
report's reading, from small samples of each tool's output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bench.models import Estimate, ImplementationResult, LoadPoint
from bench.studies import codec_cost
from bench.studies.codec import go_command, pytest_command
from bench.studies.codec_cost import costs
from bench.studies.codec_data import (
    CodecDataError,
    CodecResults,
    HandlerCall,
    Measurement,
    from_study,
    go_handlers,
    go_measurements,
    problems,
    read_pytest_json,
    to_study,
)
from bench.studies.codec_report import FIGURE_PNG, duration, reading, section, table, times
from bench.studies.codec_spec import CodecSpec
from bench.studies.pools_go import parse_go_bench
from tests.unit.conftest import make_run

TABLE: dict[str, Any] = {
    "sizes": "1024,100",
    "pytest": {"script": "scenarios/pytest_benchmark/bm_codec.py",
               "args": ["--codec-sizes={sizes}"]},
    "go": {"package": "./internal/rpc/codec", "benchmark": "BenchmarkCodec",
           "args": ["-codec.sizes={sizes}"]},
}  # fmt: skip

# Output of `go test -bench BenchmarkCodec -count 2` on this machine, cut to two sub-benchmarks.
GO_OUTPUT = """\
goos: linux
goarch: amd64
pkg: github.com/patternbench/patternbench/go/internal/rpc/codec
BenchmarkCodec/size=100/items=1/features=16/codec=protobuf/op=encode-2         	  176492	       326.8 ns/op	 306.03 MB/s	       100.0 B/msg	       0 B/op	       0 allocs/op
BenchmarkCodec/size=100/items=1/features=16/codec=protobuf/op=encode-2         	  312501	       295.6 ns/op	 338.26 MB/s	       100.0 B/msg	       0 B/op	       0 allocs/op
BenchmarkCodec/size=100/items=1/features=16/codec=json/op=decode-2             	    3308	     15476 ns/op	  19.51 MB/s	       302.0 B/msg	    1296 B/op	      78 allocs/op
PASS
ok  	github.com/patternbench/patternbench/go/internal/rpc/codec	3.1s
"""  # noqa: E501


def bench_entry(size: int, codec: str, op: str, data: list[float], nbytes: int) -> dict[str, Any]:
    """One benchmark of a pytest-benchmark JSON file, in the layout pytest-benchmark 5 writes."""
    extra = {"language": "python", "size": size, "items": 1, "features": 16, "codec": codec,
             "op": op, "bytes": nbytes, "proto_bytes": 100, "json_bytes": 302}  # fmt: skip
    ordered = sorted(data)
    return {
        "group": f"{size} B",
        "name": f"test_codec[{size}-{codec}-{op}]",
        "fullname": f"scenarios/pytest_benchmark/bm_codec.py::test_codec[{size}-{codec}-{op}]",
        "params": {"size": size, "codec": codec, "op": op},
        "param": f"{size}-{codec}-{op}",
        "extra_info": extra,
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 3},
        "stats": {"min": ordered[0], "max": ordered[-1], "median": ordered[len(data) // 2],
                  "rounds": len(data), "iterations": 100, "data": data},
    }  # fmt: skip


def pytest_json(path: Path, *benchmarks: dict[str, Any]) -> Path:
    doc = {"machine_info": {}, "commit_info": {}, "benchmarks": list(benchmarks),
           "datetime": "2026-11-29T09:43:31+00:00", "version": "5.3.1"}  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def est(median: float, spread: float = 0.0) -> Estimate:
    return Estimate(median=median, low=median - spread, high=median + spread, n=5)


def m(language: str, codec: str, op: str, size: int, us: float, nbytes: int,
      spread: float = 0.0) -> Measurement:  # fmt: skip
    return Measurement(language=language, codec=codec, op=op, size=size, items=1, features=16,
                       bytes=nbytes, proto_bytes=100 if size == 100 else 1000,
                       time_us=est(us, spread), source="test")  # fmt: skip


def results(*found: Measurement, sizes: list[int] | None = None) -> CodecResults:
    return CodecResults(
        sizes=sizes or sorted({x.size for x in found}),
        cpus=[0, 1],
        measurements=list(found),
        files={"python": "codec-python.json"},
    )


# ---- the table ------------------------------------------------------------------------------


def test_the_table_takes_sizes_as_a_parameter_string_sorted() -> None:
    spec = CodecSpec.model_validate(TABLE)
    assert spec.sizes == [100, 1024]
    assert CodecSpec.model_validate({**TABLE, "sizes": 4096}).sizes == [4096]
    assert spec.go is not None
    assert spec.go.dir == "go"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sizes": "100,0"}, "must be distinct sizes"),
        ({"sizes": "100,100"}, "must be distinct sizes"),
        ({"sizes": ""}, "at least 1 item"),
        ({"go_benchtime": "1 second"}, "is not a go -benchtime"),
        ({"min_rounds": 0}, "greater than or equal to 1"),
        ({"rounds": 3}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_table_is_refused_with_its_reason(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        CodecSpec.model_validate({**TABLE, **change})


def test_commands_fill_in_the_sizes_and_keep_the_json_where_asked(tmp_path: Path) -> None:
    spec = CodecSpec.model_validate({**TABLE, "min_rounds": 3, "go_count": 2,
                                     "go_benchtime": "50ms"})  # fmt: skip
    out = tmp_path / "codec-python.json"
    command = pytest_command(spec, tmp_path, out)
    assert command[1:4] == ["-m", "pytest", str(tmp_path / TABLE["pytest"]["script"])]
    assert f"--benchmark-json={out}" in command
    assert f"--benchmark-storage=file://{tmp_path}" in command
    assert "--benchmark-min-rounds=3" in command
    assert command[-1] == "--codec-sizes=100,1024"
    assert spec.go is not None
    assert go_command(spec, spec.go) == [
        "go", "test", "-run", "^$", "-bench", "^BenchmarkCodec$", "-benchtime", "50ms",
        "-count", "2", "./internal/rpc/codec", "-args", "-codec.sizes=100,1024",
    ]  # fmt: skip


# ---- reading the tools' output --------------------------------------------------------------


def test_pytest_benchmark_json_gives_a_median_in_us_over_every_round(tmp_path: Path) -> None:
    rounds = [2.0e-7, 2.2e-7, 2.1e-7, 9.0e-7, 2.05e-7]
    path = pytest_json(tmp_path / "c.json", bench_entry(100, "protobuf", "encode", rounds, 100),
                       bench_entry(100, "json", "decode", [4e-5, 4.2e-5, 4.1e-5], 302))  # fmt: skip
    (first, second), handlers = read_pytest_json(path)
    assert handlers == []
    assert (first.codec, first.op, first.size) == ("protobuf", "encode", 100)
    assert first.language == "python"
    assert first.time_us.median == pytest.approx(0.21)  # the slow round does not move it
    assert first.time_us.n == 5
    assert first.time_us.low <= first.time_us.median <= first.time_us.high
    assert (first.bytes, first.proto_bytes, first.items, first.features) == (100, 100, 1, 16)
    assert first.ns_per_byte == pytest.approx(2.1)
    assert first.mb_per_s == pytest.approx(100 / 0.21)
    assert second.bytes == 302
    assert second.source == "pytest-benchmark"


def test_a_file_saved_without_round_data_gives_its_median_alone(tmp_path: Path) -> None:
    entry = bench_entry(100, "json", "encode", [5e-5, 6e-5, 7e-5], 302)
    del entry["stats"]["data"]
    (found,), _ = read_pytest_json(pytest_json(tmp_path / "c.json", entry))
    assert found.time_us == Estimate(median=60.0, low=60.0, high=60.0, n=1)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (lambda e: e["extra_info"].pop("codec"), "extra_info has no codec and op"),
        (lambda e: e["extra_info"].pop("proto_bytes"), "no proto_bytes"),
        (lambda e: e.update(stats={"data": []}), "no timings"),
    ],
)
def test_a_benchmark_without_what_the_study_needs_is_named(
    tmp_path: Path, broken: Any, expected: str
) -> None:
    entry = bench_entry(100, "json", "encode", [5e-5], 302)
    broken(entry)
    with pytest.raises(CodecDataError, match=r"c\.json: test_codec\[100-json-encode\]: ") as e:
        read_pytest_json(pytest_json(tmp_path / "c.json", entry))
    assert expected in str(e.value)


def test_a_file_that_is_not_pytest_benchmark_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(CodecDataError, match=r"c\.json: not pytest-benchmark JSON"):
        read_pytest_json(path)


def test_go_samples_of_one_sub_benchmark_pool_into_one_measurement() -> None:
    encode, decode = go_measurements(parse_go_bench(GO_OUTPUT))
    assert (encode.codec, encode.op, encode.size) == ("protobuf", "encode", 100)
    assert encode.language == "go"
    assert encode.time_us.n == 2
    assert encode.time_us.median == pytest.approx((0.3268 + 0.2956) / 2)
    assert (encode.items, encode.features, encode.bytes) == (1, 16, 100)
    # A JSON line's own bytes, and the message's protobuf size from the protobuf lines.
    assert (decode.bytes, decode.proto_bytes) == (302, 100)
    assert decode.source == "go-bench"


def test_a_go_line_without_bytes_per_message_is_named() -> None:
    text = "BenchmarkCodec/size=100/items=1/features=16/codec=json/op=decode-2  3  15476 ns/op\n"
    with pytest.raises(CodecDataError, match="no B/msg"):
        go_measurements(parse_go_bench(text))


# ---- the stored layout ----------------------------------------------------------------------


def test_a_study_round_trips_through_its_stored_layout() -> None:
    found = results(m("python", "protobuf", "encode", 100, 0.2, 100),
                    m("python", "protobuf", "encode", 1024, 0.4, 1022),
                    m("go", "json", "decode", 100, 15.0, 302, spread=1.0))  # fmt: skip
    study = to_study("codec", {"sizes": [100, 1024]}, found)
    assert (study.kind, study.name) == ("codec", "codec")
    assert [s.label for s in study.series] == ["python protobuf encode", "go json decode"]
    assert [p.x for p in study.series[0].points] == [100, 1024]
    assert study.series[0].y.unit == "µs"
    assert study.series[1].points[0].metadata["mb_per_s"] == pytest.approx(302 / 15.0)
    back = from_study(study)
    assert back.measurements == found.measurements
    assert (back.sizes, back.cpus, back.files) == (found.sizes, found.cpus, found.files)


def test_problems_name_missing_sizes_and_messages_that_differ_between_languages() -> None:
    found = results(
        m("python", "protobuf", "encode", 100, 0.2, 100),
        m("go", "protobuf", "encode", 100, 0.2, 100),
        m("go", "protobuf", "encode", 1024, 0.4, 1000),
        m("python", "protobuf", "encode", 1024, 0.4, 1000),
        sizes=[100, 1024, 65536],
    )
    assert problems(found, ["python", "go"]) == [
        "python: no figures for sizes 65536",
        "go: no figures for sizes 65536",
    ]
    differ = results(m("python", "protobuf", "encode", 100, 0.2, 100),
                     Measurement(language="go", codec="protobuf", op="encode", size=100, items=1,
                                 features=16, bytes=104, proto_bytes=104, time_us=est(0.2),
                                 source="test"))  # fmt: skip
    assert problems(differ, ["python", "go"]) == [
        "size 100: the protobuf messages differ between languages (go 104 B, python 100 B)"
    ]


# ---- the reading ----------------------------------------------------------------------------


def test_ratios_are_findings_only_beyond_the_intervals() -> None:
    assert times(est(1.0, 0.1), est(12.0, 1.0)) == "12× faster"
    assert times(est(2.0, 0.1), est(1.0, 0.1)) == "2.0× slower"
    assert times(est(1.0, 0.2), est(1.1, 0.2)) == "as fast (within noise)"
    assert duration(0.234) == "0.234 µs"
    assert duration(56_051) == "56.1 ms"
    assert duration(1_970_957) == "1,971 ms"


def small_and_large() -> CodecResults:
    return results(
        m("python", "protobuf", "encode", 100, 0.2, 100),
        m("python", "protobuf", "decode", 100, 0.5, 100),
        m("python", "json", "encode", 100, 60.0, 302),
        m("python", "json", "decode", 100, 40.0, 302),
        m("python", "json-dict", "encode", 1024, 80.0, 2800),
        m("python", "json-dict", "decode", 1024, 30.0, 2800),
        m("python", "protobuf", "encode", 1024, 0.4, 1000),
        m("python", "protobuf", "decode", 1024, 0.6, 1000),
        m("python", "json", "encode", 1024, 670.0, 2800),
        m("python", "json", "decode", 1024, 320.0, 2800),
        m("go", "protobuf", "encode", 1024, 0.46, 1000),
        m("go", "protobuf", "decode", 1024, 2.4, 1000),
        m("go", "json", "encode", 1024, 59.0, 2800),
        m("go", "json", "decode", 1024, 145.0, 2800),
    )


def test_the_reading_compares_the_codecs_at_the_largest_and_smallest_size() -> None:
    python, go, reference, languages = reading(small_and_large())
    assert python.startswith(
        "- **Python: protobuf encodes a 1 KiB message 1,675× faster than JSON** (0.4 µs against "
        "670 µs) and decodes it 533× faster (0.6 µs against 320 µs); the protobuf message is "
        "2.8× smaller (1,000 B against 2,800 B). At 100 B, where a message's fixed cost shows, "
        "protobuf is 300× faster (0.2 µs against 60 µs) to encode"
    )
    assert go.startswith("- **Go: protobuf encodes a 1 KiB message 128× faster than JSON**")
    assert "At 100 B" not in go  # Go measured one size only
    assert reference == (
        "- **Python: most of the JSON time is protobuf's JSON mapping, not JSON:** at 1 KiB, "
        "serialising the same dict with the json module takes 80 µs of the mapping's 670 µs "
        "(12%); parsing the same dict with the json module takes 30 µs of the mapping's 320 µs "
        "(9%)."
    )
    assert languages.startswith("- **Go against Python at 1 KiB** (time per message, Go's first)")
    assert "JSON encode 11× faster (59 µs against 670 µs)" in languages
    assert "protobuf decode 4.0× slower (2.4 µs against 0.6 µs)" in languages


def test_the_reading_says_nothing_of_a_codec_it_lacks() -> None:
    only_protobuf = results(m("python", "protobuf", "encode", 100, 0.2, 100))
    assert reading(only_protobuf) == []


def test_the_section_has_a_table_per_language_and_the_figure(tmp_path: Path) -> None:
    r = small_and_large()
    study = to_study("codec", {}, r)
    study = study.model_copy(update={"errors": ["go test -bench: exit 1: boom"]})
    part = section(study, make_run(), tmp_path)
    assert part.reading == reading(r)
    text = "\n".join(part.lines)
    assert text.startswith("## Encoding: protobuf and JSON per message")
    assert "### Python" in text
    assert "### Go" in text
    assert f"![time per message against size]({FIGURE_PNG})" in text
    assert (tmp_path / FIGURE_PNG).stat().st_size > 0
    assert "`studies/codec/codec-python.json`" in text
    assert "- go test -bench: exit 1: boom" in text
    rows = table(r, "python")
    assert rows[0] == ("| size | codec | items × features | bytes | encode µs | decode µs "
                       "| encode MB/s | decode MB/s |")  # fmt: skip
    assert "| 1 KiB | JSON | 1 × 16 | 2,800 | 670 | 320 | 4.2 | 8.8 |" in rows


# ---- the handler: one call's own work, set against the run's CPU per call --------------------

HANDLER_TABLE: dict[str, Any] = {
    **TABLE,
    "handler_limit": "10",
    "handler_features": "16",
    "pytest": {**TABLE["pytest"], "args": ["--codec-sizes={sizes}", "--codec-handler={handler}"]},
    "go": {**TABLE["go"], "args": ["-codec.sizes={sizes}", "-codec.handler={handler}"]},
}

# `go test -bench` output of the handler sub-benchmarks (with a codec line, which they ignore).
GO_HANDLER_OUTPUT = """\
BenchmarkCodec/size=100/items=1/features=16/codec=protobuf/op=encode-2         	  176492	       326.8 ns/op	 306.03 MB/s	       100.0 B/msg	       0 B/op	       0 allocs/op
BenchmarkCodec/handler=recommend/limit=10/features=16/codec=protobuf-2         	    6314	     38083 ns/op	       938.0 B/msg	    3072 B/op	       7 allocs/op
BenchmarkCodec/handler=recommend/limit=10/features=16/codec=protobuf-2         	   10000	     39094 ns/op	       938.0 B/msg	    3072 B/op	       7 allocs/op
BenchmarkCodec/handler=recommend/limit=10/features=16/codec=json-2             	    2845	     92361 ns/op	      2807 B/msg	    9044 B/op	     118 allocs/op
"""  # noqa: E501


def handler_entry(codec: str, data: list[float], nbytes: int) -> dict[str, Any]:
    entry = bench_entry(100, codec, "handler", data, nbytes)
    entry["name"] = f"test_handler[{codec}]"
    entry["extra_info"] = {"language": "python", "codec": codec, "op": "handler", "limit": 10,
                           "features": 16, "bytes": nbytes, "users": 1024}  # fmt: skip
    return entry


def call(language: str, codec: str, us: float, spread: float = 1.0) -> HandlerCall:
    return HandlerCall(language=language, codec=codec, limit=10, features=16,
                       bytes=938 if codec == "protobuf" else 2807, time_us=est(us, spread),
                       source="test")  # fmt: skip


def test_the_table_passes_the_handlers_request_to_both_tools(tmp_path: Path) -> None:
    spec = CodecSpec.model_validate(HANDLER_TABLE)
    assert spec.handler == (10, 16)
    assert pytest_command(spec, tmp_path, tmp_path / "c.json")[-1] == "--codec-handler=10,16"
    assert spec.go is not None
    assert go_command(spec, spec.go)[-1] == "-codec.handler=10,16"
    without = CodecSpec.model_validate({**HANDLER_TABLE, "handler_limit": None,
                                        "handler_features": None})  # fmt: skip
    assert without.handler is None
    assert pytest_command(without, tmp_path, tmp_path / "c.json")[-1] == "--codec-handler="
    with pytest.raises(ValidationError, match="go together, or neither"):
        CodecSpec.model_validate({**HANDLER_TABLE, "handler_features": None})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        CodecSpec.model_validate({**HANDLER_TABLE, "handler_limit": 0})


def test_handler_benchmarks_are_read_apart_from_the_codecs(tmp_path: Path) -> None:
    path = pytest_json(tmp_path / "c.json", bench_entry(100, "protobuf", "encode", [2e-7], 100),
                       handler_entry("protobuf", [1.4e-4, 1.38e-4, 1.5e-4], 938),
                       handler_entry("json", [7.7e-4, 7.6e-4, 8e-4], 2807))  # fmt: skip
    (codec,), (protobuf, json_) = read_pytest_json(path)
    assert codec.op == "encode"
    assert (protobuf.language, protobuf.codec, protobuf.limit, protobuf.features) == (
        "python", "protobuf", 10, 16)  # fmt: skip
    assert protobuf.time_us.median == pytest.approx(140.0)
    assert (json_.bytes, json_.key) == (2807, "handler python/json")
    broken = handler_entry("json", [7e-4], 2807)
    del broken["extra_info"]["limit"]
    with pytest.raises(CodecDataError, match=r"test_handler\[json\]: no limit"):
        read_pytest_json(pytest_json(tmp_path / "b.json", broken))


def test_go_handler_lines_pool_their_samples_and_the_codec_lines_skip_them() -> None:
    lines = parse_go_bench(GO_HANDLER_OUTPUT)
    assert [m.op for m in go_measurements(lines)] == ["encode"]
    protobuf, json_ = go_handlers(lines)
    assert (protobuf.language, protobuf.codec, protobuf.limit, protobuf.features) == (
        "go", "protobuf", 10, 16)  # fmt: skip
    assert protobuf.time_us.median == pytest.approx((38.083 + 39.094) / 2)
    assert (protobuf.time_us.n, protobuf.bytes, json_.bytes) == (2, 938, 2807)
    assert protobuf.source == "go-bench"


def test_handler_figures_are_stored_as_estimates_and_read_back() -> None:
    found = replace(results(m("python", "protobuf", "encode", 100, 0.2, 100)),
                    handlers=[call("python", "protobuf", 140), call("go", "json", 112)],
                    handler=(10, 16), goal_calls_s=5000)  # fmt: skip
    study = to_study("codec", {}, found)
    assert study.estimates == {"handler python/protobuf": est(140, 1.0),
                               "handler go/json": est(112, 1.0)}  # fmt: skip
    assert study.metadata["handler"] == {"limit": 10, "features": 16}
    back = from_study(study)
    assert back.handlers == found.handlers
    assert (back.handler, back.goal_calls_s) == ((10, 16), 5000)
    assert from_study(to_study("codec", {}, results())).handler is None


def test_problems_name_a_handler_not_measured_or_at_another_request() -> None:
    other = replace(call("go", "json", 112), limit=5)
    handlers = [call("python", "protobuf", 140), call("go", "protobuf", 30), other]
    found = replace(results(), handlers=handlers, handler=(10, 16))
    assert problems(found, ["python", "go"]) == [
        "python: no handler figure for json",
        "go: the json handler answered 5 items of 16 features, not the 10 of 16 asked",
    ]
    assert problems(replace(found, handler=None), ["python", "go"]) == []


def served(name: str, language: str, transport: str | None, cpu_us: dict[float, float],
           *, call_kind: str = "unary", errors: float = 0.0, valid: bool = True,
           spread: float = 10.0) -> ImplementationResult:  # fmt: skip
    """An implementation at each rate of `cpu_us` with that CPU per call (µs), its labels: the
    summary alone, as the report reads it."""
    points = [
        LoadPoint(target_rps=rate, trials=[], valid=valid, summary={
            "cpu_us_per_call": est(cpu, spread),
            "error_rate": est(errors)})
        for rate, cpu in cpu_us.items()
    ]  # fmt: skip
    impl = ImplementationResult(name=name, language=language, status="ok", points=points)
    labels = {"transport": transport, "runtime": language, "call": call_kind} if transport else {}
    return impl.model_copy(update={"labels": labels})


def handler_study(goal: float = 10_000) -> CodecResults:
    handlers = [call("python", "protobuf", 140), call("python", "json", 770),
                call("go", "protobuf", 28, 0.2), call("go", "json", 112)]  # fmt: skip
    return replace(results(), handlers=handlers, handler=(10, 16), goal_calls_s=goal)


def test_the_decomposition_takes_the_lowest_valid_rate_and_the_transports_codec() -> None:
    run = make_run(
        served("py-g", "python", "grpc", {1000.0: 852.0, 3000.0: 700.0}),
        served("py-r", "python", "rest", {1000.0: 1579.0}, errors=0.395),
        served("go-g", "go", "grpc", {1000.0: 45.0, 3000.0: 40.0}, spread=1.0),
        served("unlabelled", "python", None, {1000.0: 900.0}),
        served("py-stream", "python", "grpc", {1000.0: 971.0}, call_kind="stream"),
        served("rust-g", "rust", "grpc", {1000.0: 50.0}),
    )
    found = costs(handler_study(), run)
    assert [c.implementation for c in found] == ["py-g", "py-r", "go-g"]
    grpc, rest, go = found
    assert (grpc.rate, grpc.cpu.median, grpc.handler.codec) == (1000.0, 852.0, "protobuf")
    assert rest.handler.codec == "json"
    assert grpc.remainder == pytest.approx(712.0)
    assert grpc.remainder_interval == pytest.approx((842 - 141, 862 - 139))
    assert grpc.share == pytest.approx(712 / 852)
    assert grpc.cores(10_000) == 9  # ceil(8.52)
    assert go.cores(10_000) == 1


def test_the_reading_says_what_holds_each_implementation_back() -> None:
    run = make_run(
        served("py-g", "python", "grpc", {1000.0: 852.0, 3000.0: 700.0}),
        served("py-r", "python", "rest", {1000.0: 1579.0}, errors=0.395),
        served("go-g", "go", "grpc", {1000.0: 45.0}, spread=1.0),
        served("go-r", "go", "rest", {1000.0: 110.0}, spread=5.0),
    )
    grpc, rest, go, go_rest = codec_cost.reading(handler_study(), run)
    assert grpc == (
        "- **What holds py-g back**: 852 µs of CPU per call at 1,000 calls/s, of which the "
        "handler's own work (decoding the request, ranking, building the answer, protobuf "
        "encoding) is 140 µs in process: 712 µs (84%) is the server's transport and framework. "
        "One core sustains about 1,170 calls/s at that cost; 10,000 calls/s would need 9 cores."
    )
    assert rest.startswith("- **What holds py-r back**: 1,579 µs of CPU per call at 1,000 "
                           "calls/s (39.5% of its calls failed there), of which the handler's "
                           "own work (decoding the request, ranking, building the answer, JSON "
                           "encoding) is 770 µs in process: 809 µs (51%)")  # fmt: skip
    assert rest.endswith("One core sustains about 633 calls/s at that cost; 10,000 calls/s "
                         "would need 16 cores.")  # fmt: skip
    assert go == (
        "- **Where go-g's CPU per call goes**: 45 µs of CPU per call at 1,000 calls/s, of which "
        "the handler's own work (decoding the request, ranking, building the answer, protobuf "
        "encoding) is 28 µs in process: 17 µs (38%) is the server's transport and framework. "
        "One core sustains about 22,200 calls/s at that cost: it reaches 10,000 calls/s on one "
        "core."
    )
    # 110 µs against a handler of 112: nothing measurable is left.
    assert "is 112 µs in process: as much as the whole call, leaving nothing measurable" in go_rest
    assert codec_cost.reading(handler_study(goal=50_000), run)[2].endswith(
        "50,000 calls/s would need 3 cores.")  # fmt: skip


def test_the_remainder_within_the_intervals_is_called_noise() -> None:
    run = make_run(served("go-r", "go", "rest", {1000.0: 120.0}, spread=10.0))
    (text,) = codec_cost.reading(handler_study(), run)
    assert ": 8 µs (7%) is the server's transport and framework (within noise of none)." in text


def test_an_implementation_without_a_valid_cpu_figure_is_left_out() -> None:
    run = make_run(served("py-g", "python", "grpc", {1000.0: 852.0}, valid=False))
    assert codec_cost.reading(handler_study(), run) == []
    assert codec_cost.reading(replace(handler_study(), handlers=[]), run) == []


def test_the_section_puts_where_a_calls_cpu_goes_before_the_codecs(tmp_path: Path) -> None:
    r = replace(small_and_large(), handlers=handler_study().handlers, handler=(10, 16))
    run = make_run(served("py-g", "python", "grpc", {1000.0: 852.0}))
    part = section(to_study("codec", {}, r), run, tmp_path)
    assert part.reading[0].startswith("- **What holds py-g back**")
    assert part.reading[1:] == reading(r)
    text = "\n".join(part.lines)
    assert text.index("## Where a call's CPU goes") < text.index("## Encoding: protobuf and JSON")
    assert "timed in process (10 items of 16 features, the run's own request)" in text
    assert "| Python | JSON | 10 items × 16 features | 770 (769 to 771) | 1,300 | 2,807 |" in text
    assert ("| py-g | 1,000 | 852 (842 to 862) | protobuf: 140 (139 to 141) | 712 (701 to 723) "
            "| 84% | 1,170 | 9 |") in text  # fmt: skip
    # Without a run to set it against, the handler table alone.
    alone = "\n".join(section(to_study("codec", {}, r), make_run(), tmp_path).lines)
    assert "| Go | protobuf |" in alone
    assert "| implementation |" not in alone
