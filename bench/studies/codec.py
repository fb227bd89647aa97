"""The codec study (kind "codec"): what protobuf and the JSON mapping cost per message, by
pytest-benchmark and `go test -bench`.

Besides its service sweep, a pattern with a `[studies.<name>]` table of this kind gets its
answers' encodings timed in process, without a network: for each size of `sizes` (bytes of
protobuf: 100 B, 1 KiB, 64 KiB, 1 MiB), the pattern's suite builds one message of about that size
and times encoding and decoding it with protobuf and with the JSON mapping its REST services use
(the scripts the table names shape the message by one rule in both languages, so both time the
same message byte for byte).

Both tools run pinned (taskset) to the study's CPUs, one after the other, with nothing else of
the harness running:

- **Python**: `python -m pytest SCRIPT --benchmark-json <workdir>/codec-python.json` with the
  table's `min_rounds`, `max_time_s` and `min_time_s` (a round batches fast calls until it lasts
  that long, so the timer's resolution does not count); the file is kept as pytest-benchmark
  wrote it, so `pytest-benchmark compare` opens it. The time of a message is the median of the
  per-call time of every round, with its bootstrap interval.
- **Go**: `go test -run '^$' -bench ^BENCHMARK$ -benchtime go_benchtime -count go_count`; each
  sample is one `-count` run's ns/op, and the time is their median with its interval. The raw
  output is kept as `go-bench.txt` for benchstat.

Bytes per message come from the suites (what each codec writes), and ns/byte and MB/s are over
those bytes. A tool that fails or a size without figures is recorded in the study's errors, and
the study goes on; so is a size whose protobuf message differs between the languages.

With `handler_limit` and `handler_features` (the service's own request shape, from the run's
parameters), both suites also time one call of each server's own work in process (decode the
request, rank, build the answer and encode it, in each codec), and the report sets that against
the CPU each implementation of the run spent per call (bench/studies/codec_cost.py).
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel

from bench.models import RunResult, Study
from bench.report.sections import ReportSection
from bench.studies import codec_report
from bench.studies.base import StudyContext
from bench.studies.codec_data import (
    CodecDataError,
    CodecResults,
    HandlerCall,
    Measurement,
    go_handlers,
    go_measurements,
    problems,
    read_pytest_json,
    to_study,
)
from bench.studies.codec_spec import CodecSpec, GoCodecBenchmark
from bench.studies.pinned import CommandError, Pinned
from bench.studies.pools_go import GoBenchError, parse_go_bench

PYTHON_JSON = "codec-python.json"
PYTHON_LOG = "codec-python.txt"
GO_LOG = "go-bench.txt"
_MIB = 1 << 20


class CodecStudy:
    """The codec study kind (bench/studies/base.py's StudyKind)."""

    spec_model: type[BaseModel] = CodecSpec

    def run(self, name: str, spec: BaseModel, ctx: StudyContext) -> Study:
        assert isinstance(spec, CodecSpec)
        return to_study(name, spec.model_dump(mode="json"), run_codec(spec, ctx))

    def section(self, study: Study, run: RunResult, run_dir: Path) -> ReportSection:
        return codec_report.section(study, run, run_dir)


Found = tuple[list[Measurement], list[HandlerCall]]


def _args(spec: CodecSpec, args: list[str]) -> list[str]:
    """The table's arguments, `{sizes}` and `{handler}` filled in."""
    handler = ",".join(map(str, spec.handler)) if spec.handler is not None else ""
    return [a.format(sizes=",".join(map(str, spec.sizes)), handler=handler) for a in args]


def pytest_command(spec: CodecSpec, root: Path, out: Path) -> list[str]:
    args = _args(spec, spec.pytest.args)
    return [
        sys.executable, "-m", "pytest", str(root / spec.pytest.script), "-q", "-rs",
        "-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-json={out}",
        f"--benchmark-storage=file://{out.parent}",  # not ./.benchmarks in the repository
        f"--benchmark-min-rounds={spec.min_rounds}", f"--benchmark-max-time={spec.max_time_s}",
        f"--benchmark-min-time={spec.min_time_s}", *args,
    ]  # fmt: skip


def go_command(spec: CodecSpec, go: GoCodecBenchmark) -> list[str]:
    args = _args(spec, go.args)
    return [
        "go", "test", "-run", "^$", "-bench", f"^{go.benchmark}$",
        "-benchtime", spec.go_benchtime, "-count", str(spec.go_count), go.package, "-args", *args,
    ]  # fmt: skip


def _skipped(output: str) -> str:
    """pytest's reason for skipping (`-rs`), or its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    reasons = [line for line in lines if line.startswith("SKIPPED")]
    return reasons[0] if reasons else (lines[-1] if lines else "no output")


def run_python(spec: CodecSpec, pinned: Pinned, workdir: Path) -> Found:
    """The pytest-benchmark suite, its JSON kept in `workdir`."""
    out = workdir / PYTHON_JSON
    out.unlink(missing_ok=True)
    # A round of each test at least min_rounds times; the slowest call here (JSON of 1 MiB in
    # Python) takes about a second; a handler call as long as its answer's JSON at most.
    timeout = 120 + sum(6 * (spec.max_time_s + 1) + 3 * (spec.min_rounds + 2) * size / _MIB
                        for size in spec.sizes)  # fmt: skip
    if spec.handler is not None:
        answer = spec.handler[0] * 4 * max(1, spec.handler[1])
        timeout += 2 * (spec.max_time_s + 1) + 2 * (spec.min_rounds + 2) * answer / _MIB
    text = pinned.run(pytest_command(spec, pinned.root, out), pinned.root, timeout)
    (workdir / PYTHON_LOG).write_text(text, encoding="utf-8")
    if not out.exists():
        raise CommandError(f"no {PYTHON_JSON} written: {_skipped(text)}")
    return read_pytest_json(out)


def _benchtime_s(benchtime: str) -> float:
    match = re.fullmatch(r"([\d.]+)(ns|us|µs|ms|s|m)", benchtime)
    if match is None:  # Nx: N calls, mostly fast
        return 1.0
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    return float(match.group(1)) * scale[match.group(2)]


def run_go(spec: CodecSpec, go: GoCodecBenchmark, pinned: Pinned, workdir: Path) -> Found:
    """The Go benchmark; its output is kept in `workdir`."""
    per_run = sum(4 * (2 * _benchtime_s(spec.go_benchtime) + 0.5 + size / _MIB)
                  for size in spec.sizes)  # fmt: skip
    if spec.handler is not None:
        per_run += 2 * (2 * _benchtime_s(spec.go_benchtime) + 0.5)
    text = pinned.run(go_command(spec, go), pinned.root / go.dir, 180 + spec.go_count * per_run)
    (workdir / GO_LOG).write_text(text, encoding="utf-8")
    lines = parse_go_bench(text)
    return go_measurements(lines), go_handlers(lines)


def run_codec(spec: CodecSpec, ctx: StudyContext) -> CodecResults:
    """Both suites, one after the other; failures are kept in `errors`."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    pinned = Pinned(root=ctx.root, cpus=ctx.cpus)
    errors: list[str] = []
    measurements: list[Measurement] = []
    handlers: list[HandlerCall] = []
    files = {"python": PYTHON_JSON}
    sizes = ", ".join(codec_report.size_label(s) for s in spec.sizes)
    if spec.handler is not None:
        sizes += f"; the handler, {spec.handler[0]} items of {spec.handler[1]} features"
    ctx.say(f"pytest-benchmark: {sizes}")
    try:
        found, calls = run_python(spec, pinned, ctx.workdir)
        measurements, handlers = measurements + found, handlers + calls
    except (CommandError, CodecDataError) as e:
        errors.append(f"pytest-benchmark: {e}")
    if spec.go is not None:
        files["go"] = GO_LOG
        ctx.say(f"go test -bench: {sizes}, {spec.go_count} samples each")
        try:
            found, calls = run_go(spec, spec.go, pinned, ctx.workdir)
            measurements, handlers = measurements + found, handlers + calls
        except (CommandError, CodecDataError, GoBenchError) as e:
            errors.append(f"go test -bench: {e}")
    results = CodecResults(sizes=spec.sizes, cpus=list(ctx.cpus), measurements=measurements,
                           handlers=handlers, handler=spec.handler,
                           goal_calls_s=spec.goal_calls_s, files=files)  # fmt: skip
    # A tool that failed outright has said so above; what the others lack is said here.
    measured = list(dict.fromkeys([m.language for m in measurements]
                                  + [h.language for h in handlers]))  # fmt: skip
    return replace(results, errors=errors + problems(results, measured))
