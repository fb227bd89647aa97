"""Where a call's CPU goes: the service sweep's CPU per call, set against the handler's own work.

The codec study times one call of each server's handler in process (bench/studies/codec_data.py:
decode the request, rank, build the answer and encode it, per language and codec). The run's
"Cost per call" (bench/report/calls.py) has, for each load point, the CPU the server's process
tree spent per call answered. For each implementation of the run whose language the study
measured, whose `transport` label names its codec (grpc: protobuf, rest: JSON) and whose calls
are unary, at its lowest-rate valid point with a CPU figure:

- the server's CPU per call, the handler's in-process time in that codec, and the remainder:
  what the server's transport and framework cost per call (its interval from the two
  intervals, as far apart as they can be);
- the calls one core sustains at that cost (1e6 / its CPU µs per call), and the cores the
  study's goal (`goal_calls_s`, 10,000 calls/s unless the table says) would take:
  ceil(goal × CPU per call).

Every figure is computed from the stored run and study; nothing here names an implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult
from bench.studies.codec_data import CODEC_NAMES, LANGUAGE_NAMES, CodecResults, HandlerCall

#: The codec a server of each transport (its `transport` label) encodes with.
ENCODING = {"grpc": "protobuf", "rest": "json"}
#: The `call` label of the calls a handler figure is one of; others (streams) are left out.
UNARY = "unary"
CPU, ERRORS = "cpu_us_per_call", "error_rate"


@dataclass(frozen=True, kw_only=True)
class CallCost:
    """One implementation's CPU per call at one load point, and its handler's share."""

    implementation: str
    rate: float | None
    """The point's target calls/s; None closed-loop."""
    cpu: Estimate
    """The server's CPU per call, µs."""
    handler: HandlerCall
    per_core: float
    """Calls/s one core sustains at that cost."""
    error_rate: float | None = None

    @property
    def remainder(self) -> float:
        """µs per call beyond the handler's: the server's transport and framework."""
        return self.cpu.median - self.handler.time_us.median

    @property
    def remainder_interval(self) -> tuple[float, float]:
        h = self.handler.time_us
        return self.cpu.low - h.high, self.cpu.high - h.low

    @property
    def share(self) -> float:
        return self.remainder / self.cpu.median if self.cpu.median > 0 else float("nan")

    def cores(self, goal: float) -> int:
        """Cores that `goal` calls/s take at this CPU per call."""
        return max(1, math.ceil(goal * self.cpu.median / 1e6 - 1e-9))


def _point(impl: ImplementationResult) -> LoadPoint | None:
    """The lowest-rate valid point with a CPU per call."""
    found = [p for p in impl.points if p.valid and CPU in p.summary]
    return min(found, key=lambda p: p.target_rps or 0.0) if found else None


def costs(r: CodecResults, run: RunResult) -> list[CallCost]:
    """Each implementation that can be set against a handler figure, in the run's order."""
    handlers = {(h.language, h.codec): h for h in r.handlers}
    out: list[CallCost] = []
    for impl in run.implementations:
        codec = ENCODING.get(impl.labels.get("transport", ""))
        handler = handlers.get((impl.language, codec or ""))
        point = _point(impl)
        if (handler is None or point is None or impl.status != "ok"
                or impl.labels.get("call", UNARY) != UNARY):  # fmt: skip
            continue
        cpu = point.summary[CPU]
        errors = point.summary.get(ERRORS)
        out.append(
            CallCost(
                implementation=impl.name,
                rate=point.target_rps,
                cpu=cpu,
                handler=handler,
                per_core=1e6 / cpu.median,
                error_rate=errors.median if errors is not None else None,
            )
        )
    return out


def _us(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _calls(value: float) -> str:
    """Calls/s to three significant digits: 1,170 or 22,400."""
    if value <= 0 or not math.isfinite(value):
        return "—"
    if value < 100:
        return f"{value:.3g}"
    return f"{round(value, 2 - math.floor(math.log10(value))):,.0f}"


def _rate(c: CallCost) -> str:
    return f"{c.rate:,.0f} calls/s" if c.rate is not None else "its closed-loop load"


def _work(codec: str) -> str:
    return (f"decoding the request, ranking, building the answer, "
            f"{CODEC_NAMES.get(codec, codec)} encoding")  # fmt: skip


def bullet(c: CallCost, goal: float) -> str:
    """What holds an implementation back (or what it costs, when one core reaches the goal)."""
    h = c.handler.time_us.median
    lead = (f"What holds {c.implementation} back" if c.per_core < goal
            else f"Where {c.implementation}'s CPU per call goes")  # fmt: skip
    failed = ""
    if c.error_rate is not None and c.error_rate > 0.001:
        failed = f" ({c.error_rate:.1%} of its calls failed there)"
    text = (
        f"- **{lead}**: {_us(c.cpu.median)} µs of CPU per call at {_rate(c)}{failed}, of which "
        f"the handler's own work ({_work(c.handler.codec)}) is {_us(h)} µs in process"
    )
    if c.remainder <= 0:
        text += (": as much as the whole call, leaving nothing measurable to the server's "
                 "transport and framework.")  # fmt: skip
    else:
        low = c.remainder_interval[0]
        noise = " (within noise of none)" if low <= 0 else ""
        text += (f": {_us(c.remainder)} µs ({c.share:.0%}) is the server's transport and "
                 f"framework{noise}.")  # fmt: skip
    text += f" One core sustains about {_calls(c.per_core)} calls/s at that cost"
    if c.per_core < goal:
        return text + f"; {_calls(goal)} calls/s would need {c.cores(goal)} cores."
    return text + f": it reaches {_calls(goal)} calls/s on one core."


def reading(r: CodecResults, run: RunResult) -> list[str]:
    return [bullet(c, r.goal_calls_s) for c in costs(r, run)]


def _cell(e: Estimate) -> str:
    if e.n < 2 or e.low == e.high:
        return _us(e.median)
    return f"{_us(e.median)} ({_us(e.low)} to {_us(e.high)})"


def handler_table(r: CodecResults) -> list[str]:
    head = ["language", "encoding", "request", "µs per call", "calls/s per core", "answer bytes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for h in r.handlers:
        row = [LANGUAGE_NAMES.get(h.language, h.language), CODEC_NAMES.get(h.codec, h.codec),
               f"{h.limit} items × {h.features} features", _cell(h.time_us),
               _calls(1e6 / h.time_us.median) if h.time_us.median > 0 else "—",
               f"{h.bytes:,}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return lines


def cost_table(found: list[CallCost], goal: float) -> list[str]:
    head = ["implementation", "target calls/s", "server CPU µs per call", "handler µs in process",
            "transport and framework µs", "share", "calls/s per core",
            f"cores for {_calls(goal)} calls/s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in found:
        low, high = c.remainder_interval
        left = _us(c.remainder)
        left += f" ({_us(low)} to {_us(high)})" if c.cpu.n > 1 else ""
        codec = CODEC_NAMES.get(c.handler.codec, c.handler.codec)
        row = [c.implementation, f"{c.rate:,.0f}" if c.rate is not None else "closed-loop",
               _cell(c.cpu), f"{codec}: {_cell(c.handler.time_us)}", left, f"{c.share:.0%}",
               _calls(c.per_core), str(c.cores(goal))]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return lines


def section(r: CodecResults, run: RunResult) -> list[str]:
    """The section's lines; none without handler figures."""
    if not r.handlers:
        return []
    asked = (f" ({r.handler[0]} items of {r.handler[1]} features, the run's own request)"
             if r.handler is not None else "")  # fmt: skip
    lines = [
        "## Where a call's CPU goes",
        "",
        f"One call of each server's own work, timed in process{asked}: decode the request, "
        "rank, build the answer and encode it, in each codec, a new user each call (median "
        "with its 95% interval; calls/s per core is its inverse).",
        "",
        *handler_table(r),
        "",
    ]
    found = costs(r, run)
    if not found:
        return lines
    goal = r.goal_calls_s
    lines += [
        f"Set against each implementation's CPU per call at its lowest valid rate (the "
        '"Cost per call" figure: the server\'s whole process tree over the window, per call '
        "answered), with the handler in its transport's codec (gRPC: protobuf, REST: JSON): what "
        "is left is the server's transport and framework per call (its interval spans the two "
        "intervals' extremes). Cores are what "
        f"{_calls(goal)} calls/s would take at that CPU per call, rounded up. Streaming "
        "implementations are left out: the handler figure is one unary call's.",
        "",
        *cost_table(found, goal),
        "",
    ]
    return lines
