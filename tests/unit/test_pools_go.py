"""Reading `go test -bench` output into the pool study's measurements."""

from __future__ import annotations

import pytest

from bench.studies.pools_go import GoBenchError, go_command, go_measurements, parse_go_bench
from bench.studies.pools_plan import Config, GoBenchmark, Variant

# Real output of `go test -bench BenchmarkPool … -count 2` on this machine.
GO_OUTPUT = """\
goos: linux
goarch: amd64
pkg: github.com/patternbench/patternbench/go/internal/workerpool
cpu: AMD EPYC
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=1-2         	       3	    692282 ns/op	      5778 tasks/s
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=1-2         	       3	    680301 ns/op	      5880 tasks/s
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=2-2         	       3	    535896 ns/op	      7464 tasks/s
BenchmarkPool/kernel=hash/rounds=2/size=1048576/tasks=4/workers=1-2        	       3	   6434175 ns/op	       621.7 tasks/s
PASS
ok  	github.com/patternbench/patternbench/go/internal/workerpool	0.070s
"""  # noqa: E501


def test_go_bench_lines_are_parsed_with_their_fields_and_units() -> None:
    lines = parse_go_bench(GO_OUTPUT)
    assert len(lines) == 4
    first = lines[0]
    assert first.name == "BenchmarkPool"
    assert first.fields == {"kernel": "spin", "rounds": "100000", "size": "0", "tasks": "4",
                            "workers": "1"}  # fmt: skip
    assert first.procs == 2
    assert first.iterations == 3
    assert first.ns_per_op == 692282
    assert first.metrics["tasks/s"] == 5778
    assert lines[3].metrics["tasks/s"] == 621.7


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("BenchmarkPool/kernel=spin-2  3  12 ns/op  5", "expected `name N value unit"),
        ("BenchmarkPool/kernel=spin-2  3  abc ns/op", "'abc' (ns/op) is not a number"),
        ("BenchmarkPool/kernel=spin-2  3  12 B/op", "no ns/op"),
        ("BenchmarkPool/odd name-2  3  12 ns/op", "is not Name/k=v"),
    ],
)
def test_bad_go_bench_lines_are_named(line: str, expected: str) -> None:
    with pytest.raises(GoBenchError, match="line 2") as err:
        parse_go_bench(f"goos: linux\n{line}\n")
    assert expected in str(err.value)


def test_go_lines_group_into_one_measurement_per_configuration() -> None:
    config = Config("go", 1, Variant("spin", 0), 100000, 4, 0.5)
    other = Config("go", 2, Variant("spin", 0), 100000, 4, 0.5)
    missing = Config("go", 1, Variant("spin", 0), 7, 4, 0.5)
    found = go_measurements(parse_go_bench(GO_OUTPUT), [config, other, missing])
    assert [(m.workers, len(m.batch_seconds)) for m in found] == [(1, 2), (2, 1)]
    one = found[0]
    assert one.source == "go-bench"
    assert one.batch_seconds == [692282e-9, 680301e-9]
    assert one.throughput.median == pytest.approx(4 / ((692282e-9 + 680301e-9) / 2), rel=0.01)
    assert one.throughput.low <= one.throughput.median <= one.throughput.high
    # The task's measured size: the one-worker batch per task, for every worker count.
    per_task_ms = (692282 + 680301) / 2 / 4 / 1e6
    assert [m.measured_task_ms for m in found] == pytest.approx([per_task_ms, per_task_ms])


def test_the_benchmark_gets_its_own_flags_from_the_table() -> None:
    go = GoBenchmark(package="./internal/x", benchmark="BenchmarkX",
                     args=["-x.cases={cases}", "-x.workers={workers}"])  # fmt: skip
    cases = [Config("go", 2, Variant("spin", 0), 100, 8, 1.0),
             Config("go", 1, Variant("hash", 64), 3, 8, 1.0)]  # fmt: skip
    command = go_command(go, cases, [2, 1], 5, cpus=2)
    assert command[:6] == ["go", "test", "-run", "^$", "-bench", "^BenchmarkX$"]
    assert command[-4:] == ["./internal/x", "-args", "-x.cases=hash:3:64:8,spin:100:0:8",
                            "-x.workers=1,2"]  # fmt: skip
