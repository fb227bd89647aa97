"""What a call costs, and what one label changes: the report's per-call section and its reading.

From the stored run alone (no study needed), for every pattern:

- **Cost per call**: the system's CPU time per call answered (its whole process tree, over the
  window) and so the calls one of its cores can answer per second; the bytes the generator put on
  and took off the wire per call, when the engine counted them.
- **Streaming**: for server-streaming calls, messages per second, the wait for the first message
  (from the intended send time) and the gaps between messages.
- **Reading**: implementations that carry `labels` (system.toml: `labels = {transport = "grpc",
  runtime = "go"}`) are contrasted two by two where they differ in one label only: at the
  lowest rate both measured validly, CPU per call, p99 and bytes per call, and each one's knee.
  A label one of whose values is `"none"` (`feature = "none"`) names a reference: its other
  values are contrasted with it, not with one another (auth vs none, not auth vs tracing).
"""

from __future__ import annotations

from itertools import combinations

from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult
from bench.report.sections import ReportSection

#: The label value that names a reference (system.toml: `labels = {feature = "none"}`).
NONE = "none"


def figure(value: float) -> str:
    """A figure as the tables write it: whole above 100, else three significant digits."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def cell(summary: dict[str, Estimate], key: str, scale: float = 1.0) -> str:
    """The median with its interval, as the results table writes them."""
    e = summary.get(key)
    if e is None:
        return "—"
    if e.n < 2 or e.low == e.high:
        return figure(e.median * scale)
    return f"{figure(e.median * scale)} ({figure(e.low * scale)} to {figure(e.high * scale)})"


def _per_core(summary: dict[str, Estimate]) -> str:
    """Calls/s one core sustains: 1e6 / CPU µs per call, its interval's ends swapped."""
    e = summary.get("cpu_us_per_call")
    if e is None or min(e.median, e.low) <= 0:
        return "—"
    inverse = Estimate(median=1e6 / e.median, low=1e6 / e.high, high=1e6 / e.low, n=e.n)
    return cell({"x": inverse}, "x")


def _rate(point: LoadPoint) -> str:
    return f"{point.target_rps:,.0f}" if point.target_rps is not None else "closed-loop"


def _has(run: RunResult, key: str) -> bool:
    return any(key in p.summary for i in run.implementations for p in i.points)


def cost_table(run: RunResult) -> list[str]:
    if not _has(run, "cpu_us_per_call"):
        return []
    wire = _has(run, "wire_bytes_per_call")
    head = ["implementation", "target calls/s", "CPU µs per call", "calls/s per core"]
    head += ["bytes on the wire per call (KiB)"] if wire else []
    lines = ["## Cost per call", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for impl in run.implementations:
        for point in impl.points:
            s = point.summary
            row = [
                impl.name,
                _rate(point),
                cell(s, "cpu_us_per_call"),
                _per_core(s),
            ]
            row += [cell(s, "wire_bytes_per_call", 1 / 1024)] if wire else []
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "CPU per call is the system's whole process tree's CPU time over the window divided by "
        "the calls it answered (refusals included); calls/s per core is its inverse, what one "
        "core of this machine could answer at that cost. Bytes on the wire are what the load "
        "generator wrote and read on its connections, both ways, per call answered: HTTP "
        "headers, HTTP/2 and gRPC framing included, TCP/IP headers not. Medians over the valid "
        "trials with their 95% interval.",
        "",
    ]
    return lines


def stream_table(run: RunResult) -> list[str]:
    if not _has(run, "messages_per_s"):
        return []
    lines = [
        "## Streaming",
        "",
        "| implementation | target calls/s | messages/s | first message p50 ms | first message "
        "p99 ms | gap p50 ms | gap p99 ms | whole call p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for impl in run.implementations:
        for point in impl.points:
            s = point.summary
            if "messages_per_s" not in s:
                continue
            keys = ("messages_per_s", "first_message_p50", "first_message_p99", "gap_p50",
                    "gap_p99", "p99")  # fmt: skip
            lines.append(f"| {impl.name} | {_rate(point)} | "
                         + " | ".join(cell(s, k) for k in keys) + " |")  # fmt: skip
    lines += [
        "",
        "A streaming call's latency (the results' p99) runs from its intended send time to its "
        "last message; the first message's wait is from the same intended send time, and a gap "
        "is the time between two messages of one call.",
        "",
    ]
    return lines


def _common_point(
    a: ImplementationResult, b: ImplementationResult
) -> tuple[LoadPoint, LoadPoint] | None:
    """The two implementations' points at the lowest rate both measured validly."""
    theirs = {p.target_rps: p for p in b.points if p.valid and p.summary}
    for point in sorted(a.points, key=lambda p: p.target_rps or 0.0):
        other = theirs.get(point.target_rps)
        if point.valid and point.summary and other is not None:
            return point, other
    return None


def _ratio(key: str, pa: LoadPoint, pb: LoadPoint, unit: str, scale: float = 1.0) -> str | None:
    ea, eb = pa.summary.get(key), pb.summary.get(key)
    if ea is None or eb is None or eb.median == 0:
        return None
    return (
        f"{figure(ea.median * scale)} vs {figure(eb.median * scale)} {unit} "
        f"({ea.median / eb.median:.2f}×)"
    )


def _knee(a: ImplementationResult, b: ImplementationResult) -> str:
    if a.knee_rps is None and b.knee_rps is None:
        return ""
    knee = [f"{i.knee_rps:,.0f}" if i.knee_rps is not None else "none" for i in (a, b)]
    return f" Knee: {knee[0]} vs {knee[1]} calls/s."


def _trouble(impl: ImplementationResult, point: LoadPoint) -> str | None:
    """Why a point's figures are not a healthy system's: errors over 0.1%."""
    errors = point.summary.get("error_rate")
    if errors is not None and errors.median > 0.001:
        return f"{impl.name} failed {errors.median:.1%} of its calls there"
    return None


def contrasts(run: RunResult) -> list[str]:
    """One bullet per pair of implementations that differ in exactly one label."""
    impls = [i for i in run.implementations if i.labels and i.status == "ok"]
    bullets: list[str] = []
    for a, b in combinations(impls, 2):
        if a.labels.keys() != b.labels.keys():
            continue
        differ = [k for k in a.labels if a.labels[k] != b.labels[k]]
        if len(differ) != 1:
            continue
        key = differ[0]
        if NONE not in (a.labels[key], b.labels[key]) and any(
            i.labels.get(key) == NONE for i in impls
        ):
            continue
        same = "".join(f"{k} {v}, " for k, v in a.labels.items() if k != key)
        found = _common_point(a, b)
        if found is None:
            bullets.append(f"- **{key}: {a.labels[key]} vs {b.labels[key]}** ({same}{a.name} vs "
                           f"{b.name}): no rate "
                           "where both were measured validly.")  # fmt: skip
            continue
        pa, pb = found
        parts = [
            _ratio("cpu_us_per_call", pa, pb, "µs of CPU per call"),
            _ratio("p99", pa, pb, "ms p99"),
            _ratio("wire_bytes_per_call", pa, pb, "KiB on the wire per call", 1 / 1024),
        ]
        figures = "; ".join(p for p in parts if p)
        trouble = [t for t in (_trouble(a, pa), _trouble(b, pb)) if t]
        caveat = f" ({', '.join(trouble)}: overloaded)" if trouble else ""
        bullets.append(
            f"- **{key}: {a.labels[key]} vs {b.labels[key]}** ({same}{a.name} vs {b.name}) at "
            f"{_rate(pa)} calls/s{caveat}: {figures}.{_knee(a, b)}"
        )
    return bullets


def section(run: RunResult) -> ReportSection:
    """The per-call tables and the label contrasts, as a section of the report."""
    return ReportSection(reading=contrasts(run), lines=[*cost_table(run), *stream_table(run)])
