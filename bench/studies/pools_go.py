"""The Go side of the pool study: `go test -bench` on the configurations, and its output read.

The benchmark the table names takes the configurations through its own flags (the table's
`go.args`, with `{cases}` and `{workers}` filled in), runs one batch per sample
(`-benchtime 1x`, `-count n`) and names each case `Name/kernel=K/rounds=R/size=S/tasks=T/workers=W`.
Its raw output is kept beside the pyperf suites (`go-bench.txt`) for benchstat.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from bench.models import Estimate
from bench.stats.confidence import median_ci
from bench.studies.pinned import Pinned
from bench.studies.pools_data import Measurement
from bench.studies.pools_plan import Config, GoBenchmark, Variant, calibration_key, rounds_for

_GO_NAME = re.compile(r"^(Benchmark\w+)((?:/[\w.]+=[\w.]+)*)(?:-(\d+))?$")
#: Probes of about this long, this many of them, calibrate a Go kernel.
PROBE_MS, PROBES = 50.0, 5


class GoBenchLine(NamedTuple):
    name: str
    fields: dict[str, str]
    procs: int | None
    iterations: int
    ns_per_op: float
    metrics: dict[str, float]


class GoBenchError(Exception):
    """`go test -bench` output that cannot be read."""


def parse_go_bench(text: str) -> list[GoBenchLine]:
    """The result lines of `go test -bench` output (the Go benchmark data format).

    A line is `Name[/k=v…][-procs]  N  value unit  [value unit …]`; configuration lines
    (`goos: linux`), `PASS` and `ok …` are skipped. Sub-benchmark names in `k=v` form become
    `fields`.
    """
    lines: list[GoBenchLine] = []
    for number, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts or not parts[0].startswith("Benchmark") or len(parts) < 2:
            continue
        match = _GO_NAME.match(parts[0])
        if match is None:
            raise GoBenchError(f"line {number}: benchmark name {parts[0]!r} is not Name/k=v…")
        if len(parts) % 2 or not parts[1].isdigit():
            raise GoBenchError(f"line {number}: expected `name N value unit …`: {raw.strip()!r}")
        metrics: dict[str, float] = {}
        for value, unit in zip(parts[2::2], parts[3::2], strict=True):
            try:
                metrics[unit] = float(value)
            except ValueError:
                raise GoBenchError(f"line {number}: {value!r} ({unit}) is not a number") from None
        if "ns/op" not in metrics:
            raise GoBenchError(f"line {number}: no ns/op")
        fields = dict(p.split("=", 1) for p in match.group(2).split("/") if p)
        lines.append(
            GoBenchLine(
                name=match.group(1),
                fields=fields,
                procs=int(match.group(3)) if match.group(3) else None,
                iterations=int(parts[1]),
                ns_per_op=metrics["ns/op"],
                metrics=metrics,
            )
        )
    return lines


_Case = tuple[str, int, int, int]  # kernel, rounds, size, tasks


def _case(line: GoBenchLine) -> tuple[_Case, int]:
    try:
        f = line.fields
        case = (f["kernel"], int(f["rounds"]), int(f["size"]), int(f["tasks"]))
        return case, int(f["workers"])
    except (KeyError, ValueError) as e:
        raise GoBenchError(f"{line.name}: missing or bad field {e}") from None


def go_measurements(lines: Iterable[GoBenchLine], configs: Iterable[Config]) -> list[Measurement]:
    """One measurement per configuration found: a sample (seconds per batch) per line.

    The measured task time of every worker count is the one-worker batch time per task of the
    same case: a Go pool adds next to nothing to a task.
    """
    samples: dict[tuple[_Case, int], list[float]] = {}
    for line in lines:
        case, workers = _case(line)
        samples.setdefault((case, workers), []).append(line.ns_per_op / 1e9)
    found: list[Measurement] = []
    for config in configs:
        v = config.variant
        case = (v.kernel, config.rounds, v.size, config.tasks)
        if (case, config.workers) not in samples:
            continue
        one = samples.get((case, 1))
        measured = 1000 * statistics.median(one) / config.tasks if one else None
        found.append(measurement(config, "go-bench", samples[(case, config.workers)], measured))
    return found


def measurement(
    config: Config, source: str, batch_seconds: list[float], measured_task_ms: float | None
) -> Measurement:
    e = median_ci([config.tasks / s for s in batch_seconds])
    return Measurement(
        implementation=config.implementation,
        source=source,
        kernel=config.variant.kernel,
        size=config.variant.size,
        rounds=config.rounds,
        tasks=config.tasks,
        task_ms=config.task_ms,
        workers=config.workers,
        batch_seconds=batch_seconds,
        throughput=Estimate(median=e.median, low=e.low, high=e.high, n=e.n),
        measured_task_ms=measured_task_ms,
    )


def go_command(
    go: GoBenchmark, cases: Sequence[Config], workers: Sequence[int], count: int, cpus: int
) -> list[str]:
    case_text = ",".join(
        sorted({f"{c.variant.kernel}:{c.rounds}:{c.variant.size}:{c.tasks}" for c in cases})
    )
    worker_text = ",".join(map(str, sorted(set(workers))))
    args = [a.format(cases=case_text, workers=worker_text) for a in go.args]
    return [
        "go", "test", "-run", "^$", "-bench", f"^{go.benchmark}$", "-benchtime", "1x",
        "-count", str(count), "-cpu", str(cpus), go.package, "-args", *args,
    ]  # fmt: skip


def run_go(pinned: Pinned, go: GoBenchmark, configs: Sequence[Config], workers: Sequence[int],
           count: int, timeout_s: float, log: Path) -> list[GoBenchLine]:  # fmt: skip
    """Run the benchmark on the configurations; its output is appended to `log`."""
    command = go_command(go, configs, workers, count, len(pinned.cpus))
    out = pinned.run(command, pinned.root / go.dir, timeout_s)
    with log.open("a", encoding="utf-8") as f:
        f.write(out)
    return parse_go_bench(out)


def calibrate_go(
    pinned: Pinned, go: GoBenchmark, group: str, variants: Sequence[Variant],
    guess_ns: dict[Variant, float], log: Path,
) -> dict[str, list[float]]:  # fmt: skip
    """Nanoseconds per round of the Go kernels, one figure per probe: PROBES probes of about
    PROBE_MS on one worker, pinned as the benchmark is. `guess_ns` sizes the probes (a guess: a
    probe that is far off only takes longer)."""
    probe = [Config(group, 1, v, rounds_for(PROBE_MS, guess_ns[v]), 1, PROBE_MS) for v in variants]
    lines = run_go(pinned, go, probe, [1], PROBES, 300, log)
    found: dict[str, list[float]] = {}
    for line in lines:
        variant = Variant(line.fields["kernel"], int(line.fields["size"]))
        key = calibration_key(group, variant)
        found.setdefault(key, []).append(line.ns_per_op / int(line.fields["rounds"]))
    missing = [key for v in variants if (key := calibration_key(group, v)) not in found]
    if missing:
        raise GoBenchError(f"go calibration: no figure for {', '.join(missing)}")
    return found


def go_guess(variant: Variant, python_ns: float | None) -> float:
    """A first guess of a Go round's cost: a spin round is about 100 times cheaper in Go than in
    CPython, a SHA-256 round the same (compiled code either way)."""
    if python_ns is None or not math.isfinite(python_ns):
        return 2.0 if variant.kernel == "spin" else max(1.0, variant.size / 2)
    return python_ns / (100 if variant.kernel == "spin" else 1)
