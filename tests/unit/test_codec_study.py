"""The codec study's pure parts: its table, reading both tools' output, the stored layout and the
report's reading, from small samples of each tool's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bench.models import Estimate
from bench.studies.codec import go_command, pytest_command
from bench.studies.codec_data import (
    CodecDataError,
    CodecResults,
    CodecSpec,
    Measurement,
    from_study,
    go_measurements,
    problems,
    read_pytest_json,
    to_study,
)
from bench.studies.codec_report import FIGURE_PNG, duration, reading, section, table, times
from bench.studies.pools_go import parse_go_bench

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
        ({"sizes": "100,0"}, "sizes must be distinct"),
        ({"sizes": "100,100"}, "sizes must be distinct"),
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
    first, second = read_pytest_json(path)
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
    (found,) = read_pytest_json(pytest_json(tmp_path / "c.json", entry))
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
    part = section(study, tmp_path)
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
