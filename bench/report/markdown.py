"""report.md: the readable report of a run, in Markdown (report.html is made from it).

The report puts first what a reader must know before trusting any number (what failed, which
points the load generator limited, where each implementation leaves the SLO, gaps between client
and server latency), then the side-by-side table with confidence intervals, the curves, the
percentile spectra, the trials, the scenario and the environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult, Trial
from bench.stats.headroom import split_errors
from bench.stats.summary import error_note

CURVE_PNG = "throughput_latency.png"

#: A client p99 this many times the server's (and GAP_MIN_MS more) is called out.
GAP_RATIO, GAP_MIN_MS = 2.0, 5.0


def spectrum_png(rate: float | None) -> str:
    return f"latency_spectrum_{rate:g}.png" if rate is not None else "latency_spectrum.png"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def _est(summary: dict[str, Estimate], key: str) -> str:
    e = summary.get(key)
    if e is None:
        return "—"
    if e.n < 2 or e.low == e.high:
        return _num(e.median)
    return f"{_num(e.median)} ({_num(e.low)} to {_num(e.high)})"


def _rate(point: LoadPoint) -> str:
    return f"{point.target_rps:,.0f}" if point.target_rps is not None else "closed-loop"


def _load_line(run: RunResult) -> str:
    s, p = run.scenario, run.scenario.params
    if s.load_model == "open-loop":
        rates = ", ".join(f"{r:,.0f}" for r in s.rates)
        text = f"open-loop `{s.engine}`, {s.arrival} arrivals at {rates} req/s"
    else:
        text = f"closed-loop Locust, {p['users']} users"
        rate = p.get("user_rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            text += f" each paced to {rate:g} req/s"
    return (
        f"{text}; {s.trials} trial(s) per implementation and rate, interleaved; each trial "
        f"{p['warmup_s']} s warm-up + {p['duration_s']} s measured, on a freshly started system."
    )


def _verdicts(run: RunResult) -> list[str]:
    lines: list[str] = []
    for impl in run.implementations:
        if impl.status != "ok":
            lines.append(
                f"- **{impl.name} was not measured in full** ({impl.status}): {impl.error}"
            )
            lines += [f"    - {p}" for p in impl.verify_problems[:10]]
            if impl.stderr_tail:
                tail = impl.stderr_tail.splitlines()[-15:]
                lines += ["", "  ```", *[f"  {s}" for s in tail], "  ```"]
        for point in impl.points:
            bad = [t for t in point.trials if not t.valid]
            if bad:
                reasons = "; ".join(sorted({r for t in bad for r in t.invalid_reasons}))
                verdict = "not the system's figure" if not point.valid else "left out"
                lines.append(
                    f"- {impl.name} at {_rate(point)} req/s: {len(bad)} of {len(point.trials)} "
                    f"trials were limited by the load generator ({reasons}) — {verdict}."
                )
            lines += _gap(impl, point)
            lines += _errors(impl, point)
            silent = [t for t in point.trials if t.server_metrics_error]
            if silent:
                why = silent[0].server_metrics_error
                lines.append(
                    f"- {impl.name} at {_rate(point)} req/s: no server-side metrics in "
                    f"{len(silent)} of {len(point.trials)} trials ({why}) — a sign of overload."
                )
        lines += _slo_verdict(run, impl)
    lines += [f"- {note[:1].upper()}{note[1:]}." for note in run.scenario.notes]
    if run.environment.cpusets.shared:
        lines.append("- The system and the load generator shared CPUs: figures include contention.")
    return lines or ["- Every implementation passed its test vectors and every point is valid."]


def _errors(impl: ImplementationResult, point: LoadPoint) -> list[str]:
    """Whose a point's errors were: the system's answers (it shed load) or the generator's
    (nobody answered: the system queued until the generator's cap, timeout or connection gave)."""
    note = error_note(point)
    if note is None:
        return []
    split = split_errors(*(t.load.error_kinds for t in point.trials))
    line = f"- {impl.name} at {_rate(point)} req/s, {note}."
    if split.generator_total > split.system_total:
        line += (
            " Most of them the system never answered: it did not refuse what it could not serve, "
            "so requests waited until the generator gave up on them."
        )
    return [line]


def _errors_cell(s: dict[str, Estimate]) -> str:
    """errors %, and when there are any, its system / generator parts."""
    if "error_rate" not in s:
        return "—"
    total = f"{100 * s['error_rate'].median:.2f}"
    system, generator = s.get("system_error_rate"), s.get("generator_error_rate")
    if s["error_rate"].median == 0 or system is None or generator is None:
        return total
    return f"{total} ({100 * system.median:.2f} / {100 * generator.median:.2f})"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f}"


def _rss_after(trials: list[Trial]) -> str:
    """The highest RSS after the cool-down over the trials that sampled it."""
    after = [t.process.rss_after_cooldown_bytes for t in trials]
    return _mib(max((a for a in after if a is not None), default=None))


def _server(summary: dict[str, Estimate], key: str) -> str:
    low, high = summary.get(f"server_{key}_low"), summary.get(f"server_{key}_high")
    if low is None or high is None:
        return "—"
    return f"{_num(low.median)} to {_num(high.median)}"


def _gap(impl: ImplementationResult, point: LoadPoint) -> list[str]:
    client, server = point.summary.get("p99"), point.summary.get("server_p99_high")
    if client is None or server is None:
        return []
    if client.median > GAP_RATIO * server.median and client.median - server.median > GAP_MIN_MS:
        return [
            f"- {impl.name} at {_rate(point)} req/s: client p99 {_num(client.median)} ms vs "
            f"server p99 at most {_num(server.median)} ms. The difference was spent before the "
            "server's handler started or after it finished: queueing for the listener and accept "
            "backlog, the generator's connection pool, or, open-loop, the wait of requests the "
            "server could not take yet (which the corrected latency counts and the server never "
            "sees)."
        ]
    return []


def _slo_verdict(run: RunResult, impl: ImplementationResult) -> list[str]:
    if impl.search is not None:
        s = impl.search
        best = f"{s.best_rate:,.0f} req/s" if s.best_rate is not None else "no rate tried"
        return [f"- **{impl.name}: highest rate meeting {s.slo}: {best}.** {s.reason}"]
    if run.scenario.slo and len(impl.points) >= 2 and impl.status == "ok":
        if impl.knee_rps is None:
            return [f"- {impl.name} misses {run.scenario.slo} already at the lowest rate."]
        return [f"- **{impl.name} meets {run.scenario.slo} up to {impl.knee_rps:,.0f} req/s** "
                "(the knee, marked on the curve)."]  # fmt: skip
    return []


def _results_table(run: RunResult) -> list[str]:
    open_loop = run.scenario.load_model == "open-loop"
    head = ["implementation", "target req/s", "valid", "req/s", "p50 ms", "p95 ms", "p99 ms",
            "p99.9 ms"]  # fmt: skip
    if open_loop:
        head += ["uncorrected p99 ms", "slip p99 ms"]
    head += ["server p99 bucket ms", "errors % (system / generator)", "CPU %", "peak RSS MiB",
             "RSS after cool-down MiB", "generator CPU %"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for impl in run.implementations:
        if not impl.points:
            lines.append(f"| {impl.name} | **{impl.status}** |" + " — |" * (len(head) - 2))
        for point in impl.points:
            s = point.summary
            rss = max(t.process.peak_rss_bytes for t in point.trials) / 2**20
            gen = max(t.load.generator_cpu_percent for t in point.trials)
            row = [impl.name, _rate(point), "yes" if point.valid else "**no**"]
            row += [_est(s, key) for key in ("throughput_rps", "p50", "p95", "p99", "p999")]
            if open_loop:
                row += [_est(s, "u_p99"), _est(s, "slip_p99")]
            row += [
                _server(s, "p99"),
                _errors_cell(s),
                _est(s, "cpu_percent"),
                f"{rss:.1f}",
                _rss_after(point.trials),
                f"{gen:.0f}",
            ]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _trials_table(run: RunResult) -> list[str]:
    lines = [
        '<details markdown="1"><summary>Every trial</summary>',
        "",
        "| implementation | target req/s | trial | valid | sent req/s | p50 ms | p95 ms | p99 ms "
        "| errors (system / generator) | peak RSS MiB | RSS after cool-down MiB "
        "| generator CPU % | why invalid |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for impl in run.implementations:
        for point in impl.points:
            for t in point.trials:
                lat = t.load.latency_ms
                valid = "yes" if t.valid else "no"
                p95 = _num(lat.p95) if lat.p95 is not None else "—"
                split = split_errors(t.load.error_kinds)
                errors = f"{t.load.errors}"
                if split.total:
                    errors += f" ({split.system_total} / {split.generator_total})"
                lines.append(
                    f"| {impl.name} | {_rate(point)} | {t.index + 1} | {valid} "
                    f"| {_num(t.load.achieved_rps)} | {_num(lat.p50)} | {p95} | {_num(lat.p99)} "
                    f"| {errors} | {_mib(t.process.peak_rss_bytes)} "
                    f"| {_mib(t.process.rss_after_cooldown_bytes)} "
                    f"| {t.load.generator_cpu_percent:.0f} | {'; '.join(t.invalid_reasons)} |"
                )
    return [*lines, "", "</details>", ""]


def _server_metrics(run: RunResult) -> list[str]:
    """Counters of the first trial at the first rate, per implementation: what the system saw."""
    firsts = [(i.name, i.points[0].trials[0]) for i in run.implementations if i.points]
    keys = sorted({k for _, t in firsts for k in t.server_metrics if "_bucket" not in k})
    if not keys:
        return []
    lines = [
        '<details markdown="1"><summary>Server-side metrics (first trial, first rate)</summary>',
        "",
        "| metric | " + " | ".join(name for name, _ in firsts) + " |",
        "|---|" + "---|" * len(firsts),
    ]
    for key in keys:
        cells = [
            f"{t.server_metrics[key]:,.6g}" if key in t.server_metrics else "—" for _, t in firsts
        ]
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return [*lines, "", "</details>", ""]


def _engine_spec(spec: dict[str, object]) -> str:
    """The engine's own table as used, one `key value` pair after another; when implementations
    had tables of their own, one line per group of implementations that shared a table."""
    if not spec:
        return ""
    by_impl = spec.get("by_implementation")
    if not isinstance(by_impl, dict):
        return ": " + ", ".join(f"{key} `{value}`" for key, value in spec.items())
    groups: list[tuple[list[str], dict[str, object]]] = []
    for name, table in by_impl.items():
        same = next((g for g in groups if g[1] == table), None)
        if same is None:
            groups.append(([name], table))
        else:
            same[0].append(name)
    lines = [f"\n- {', '.join(names)}{_engine_spec(table)}" for names, table in groups]
    return ":\n" + "".join(lines)


def render_markdown(
    run: RunResult,
    curve_png: str | None,
    spectra: list[tuple[str, str]],
    reading: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> str:
    """The report; `reading` (bullets, from the studies) goes first, `sections` (the studies'
    Markdown) after the service figures."""
    env, scenario = run.environment, run.scenario
    cpus = env.cpusets
    corrected = (
        "from each request's **intended** send time (coordinated omission corrected; the "
        "uncorrected latency, from the actual send, is shown beside it)"
        if scenario.load_model == "open-loop"
        else "from each request's actual send time (closed-loop: stalls slow the users down "
        "instead of showing as latency)"
    )
    lines = [
        f"# {scenario.pattern} — {run.run_id}",
        "",
        f"Load: {_load_line(run)} Latency is measured by the load generator {corrected}, into "
        "HDR histograms. Figures are medians over the valid trials with their 95% bootstrap "
        "interval in brackets (with 3 to 5 trials, read it as the spread of the trials).",
        "",
    ]
    if reading:
        lines += ["## Reading", "", *reading, ""]
    lines += [
        "## Verdicts",
        "",
        *_verdicts(run),
        "",
        "## Results",
        "",
        *_results_table(run),
        "",
        "Server p99 is the bucket of the system's own latency histogram that its p99 lies in: "
        "the server cannot say more. Errors are split by who produced them: the system's "
        "answers (a status such as 503: it refused) and the generator's (no answer: never sent "
        "at its in-flight cap, timed out, connection failed). CPU % and RSS are the "
        "implementation's whole process tree (a process pool's memory is the sum of its "
        "processes; shared pages count in each), CPU in % of one core; RSS after cool-down is "
        "sampled once the load has stopped for the `cooldown_s` parameter's seconds, the highest "
        "of the trials, as are peak RSS and generator CPU %.",
        "",
    ]
    if curve_png:
        lines += ["## Throughput and latency", "",
                  f"![latency and throughput against offered load]({curve_png})", ""]  # fmt: skip
        lines += [
            "Both panels share the offered load (the target rate) on x, so the curves go on to "
            "the right past overload; below, the throughput achieved leaves the diagonal where "
            "the system stops keeping up. Hollow red circles mark generator-limited points; a "
            "star marks the knee.",
            "",
        ]
    if spectra:
        lines += ["## Latency by percentile", ""]
        for title, png in spectra:
            lines += [f"![{title}]({png})", ""]
        lines += [
            "The x axis stretches the tail (90%, 99%, 99.9% …) as HdrHistogram plots do; a curve "
            "that turns up early means a heavy tail. Dashed: uncorrected latency.",
            "",
        ]
    lines += sections
    lines += _trials_table(run)
    lines += _server_metrics(run)
    params = ", ".join(f"`{k}={v}`" for k, v in sorted(scenario.params.items()))
    libs = ", ".join(f"{k} {v}" for k, v in sorted(env.libraries.items()))
    lines += [
        "## Scenario",
        "",
        f"Engine `{scenario.engine}` ({scenario.load_model}){_engine_spec(scenario.engine_spec)}.",
        "",
        f"Parameters: {params}.",
        "",
        "## Environment",
        "",
        f"- git `{env.git_sha or 'unknown'}`" + (" (uncommitted changes)" if env.git_dirty else ""),
        f"- {env.cpu_model}, {env.cpu_count} CPUs available; system on CPUs {cpus.system}, "
        f"load generator on {cpus.loadgen}, support processes on {cpus.support}",
        f"- Python {env.python}, {env.go or 'Go not found'}, {env.platform}",
        f"- {libs}",
        *_devices(run),
        "",
    ]
    return "\n".join(lines)


def _devices(run: RunResult) -> list[str]:
    """The GPUs found, and the device each implementation that asked for one got."""
    asked = [f"{i.name} on {i.device}" for i in run.implementations if i.device is not None]
    if not run.environment.gpus and not asked:
        return []
    found = ", ".join(run.environment.gpus) or "none"
    return [f"- GPUs: {found}" + (f"; {', '.join(asked)}" if asked else "")]
