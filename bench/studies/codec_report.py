"""The codec study's part of the report: a reading, a table per language, one figure; before
them, where a call's CPU goes (bench/studies/codec_cost.py).

Everything here is computed from the stored study (bench/studies/codec_data.py): which codec is
faster, by how much and at which size is read off the measurements, and a difference whose
intervals overlap is called within noise, not a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.models import Estimate, RunResult, Study
from bench.report.sections import ReportSection
from bench.studies import codec_cost
from bench.studies.codec_data import (
    CODEC_NAMES,
    LANGUAGE_NAMES,
    CodecResults,
    Measurement,
    from_study,
)

FIGURE_PNG = "codec_times.png"
_ORDER = {"protobuf": 0, "json": 1, "json-dict": 2, "python": 0, "go": 1}

Key = tuple[str, str, str, int]  # language, codec, op, size


def size_label(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def index(r: CodecResults) -> dict[Key, Measurement]:
    return {(m.language, m.codec, m.op, m.size): m for m in r.measurements}


def _ordered(names: Sequence[str]) -> list[str]:
    return sorted(dict.fromkeys(names), key=lambda n: (_ORDER.get(n, 9), n))


def languages(r: CodecResults) -> list[str]:
    return _ordered([m.language for m in r.measurements])


def codecs(r: CodecResults, language: str) -> list[str]:
    return _ordered([m.codec for m in r.measurements if m.language == language])


def sizes(r: CodecResults) -> list[int]:
    return sorted({m.size for m in r.measurements})


def _language(name: str) -> str:
    return LANGUAGE_NAMES.get(name, name)


def _codec(name: str) -> str:
    return CODEC_NAMES.get(name, name)


def duration(us: float) -> str:
    """A time per message, µs or ms, three significant digits."""
    if us >= 1000:
        return f"{us / 1000:,.3g} ms" if us < 100_000 else f"{us / 1000:,.0f} ms"
    return f"{us:.3g} µs"


def overlap(a: Estimate, b: Estimate) -> bool:
    return a.low <= b.high and b.low <= a.high


def times(fast: Estimate, slow: Estimate) -> str:
    """`12× faster`, `1.4× slower` or `as fast (within noise)`: fast's time against slow's."""
    if overlap(fast, slow) or fast.median <= 0 or slow.median <= 0:
        return "as fast (within noise)"
    ratio = slow.median / fast.median
    if ratio >= 1:
        return f"{ratio:,.{0 if ratio >= 10 else 1}f}× faster"
    return f"{1 / ratio:,.{0 if 1 / ratio >= 10 else 1}f}× slower"


# ---- the reading ----------------------------------------------------------------------------


def reading(r: CodecResults) -> list[str]:
    """Bullets, each a finding with its figures, for the top of the report."""
    lines: list[str] = []
    for language in languages(r):
        lines += _codec_reading(r, language)
    lines += _reference_reading(r)
    lines += _language_reading(r)
    return lines


Pair = tuple[Measurement, Measurement]


def _pair(r: CodecResults, language: str, size: int, a: str, b: str, op: str) -> Pair | None:
    idx = index(r)
    x, y = idx.get((language, a, op, size)), idx.get((language, b, op, size))
    return (x, y) if x is not None and y is not None else None


def _against(pair: Pair) -> str:
    """`12× faster (1.2 ms against 14 ms)`: the first's time against the second's."""
    a, b = pair[0].time_us, pair[1].time_us
    return f"{times(a, b)} ({duration(a.median)} against {duration(b.median)})"


def _codec_reading(r: CodecResults, language: str) -> list[str]:
    found: dict[int, tuple[Pair, Pair]] = {}
    for size in sizes(r):
        enc = _pair(r, language, size, "protobuf", "json", "encode")
        dec = _pair(r, language, size, "protobuf", "json", "decode")
        if enc is not None and dec is not None:
            found[size] = (enc, dec)
    if not found:
        return []
    large, small = max(found), min(found)
    (pe, je), dec = found[large]
    text = (
        f"- **{_language(language)}: protobuf encodes a {size_label(large)} message "
        f"{times(pe.time_us, je.time_us)} than JSON** ({duration(pe.time_us.median)} against "
        f"{duration(je.time_us.median)}) and decodes it {_against(dec)}"
    )
    if pe.bytes and je.bytes:
        text += (
            f"; the protobuf message is {je.bytes / pe.bytes:.1f}× smaller "
            f"({pe.bytes:,} B against {je.bytes:,} B)"
        )
    if small != large:
        enc, dec = found[small]
        text += (
            f". At {size_label(small)}, where a message's fixed cost shows, protobuf is "
            f"{_against(enc)} to encode and {_against(dec)} to decode"
        )
    return [text + "."]


def _reference_reading(r: CodecResults) -> list[str]:
    """How much of the JSON mapping's time is JSON itself (json-dict: the same dict, no
    protobuf), at the largest size that has both."""
    out: list[str] = []
    for language in languages(r):
        found = [s for s in sizes(r) if _pair(r, language, s, "json-dict", "json", "encode")]
        if not found:
            continue
        size = found[-1]
        parts, shares = [], []
        for op, call in (("encode", "serialising"), ("decode", "parsing")):
            pair = _pair(r, language, size, "json-dict", "json", op)
            if pair is None or pair[1].time_us.median <= 0:
                continue
            plain, mapped = pair[0].time_us.median, pair[1].time_us.median
            shares.append(plain / mapped)
            parts.append(f"{call} the same dict with the json module takes {duration(plain)} "
                         f"of the mapping's {duration(mapped)} ({plain / mapped:.0%})")  # fmt: skip
        if not parts:
            continue
        lead = (
            "most of the JSON time is protobuf's JSON mapping, not JSON"
            if max(shares) < 0.5
            else "JSON itself is most of the JSON time"
        )
        out.append(f"- **{_language(language)}: {lead}:** at {size_label(size)}, "
                   f"{'; '.join(parts)}.")  # fmt: skip
    return out


def _language_reading(r: CodecResults) -> list[str]:
    found = languages(r)
    if "python" not in found or "go" not in found:
        return []
    idx = index(r)
    common = [s for s in sizes(r) if ("go", "json", "encode", s) in idx
              and ("python", "json", "encode", s) in idx]  # fmt: skip
    if not common:
        return []
    size = common[-1]
    parts = []
    for codec in ("protobuf", "json"):
        for op in ("encode", "decode"):
            go, py = idx.get(("go", codec, op, size)), idx.get(("python", codec, op, size))
            if go is None or py is None:
                continue
            parts.append(f"{_codec(codec)} {op} {_against((go, py))}")
    if not parts:
        return []
    return [f"- **Go against Python at {size_label(size)}** (time per message, Go's first): "
            f"{'; '.join(parts)}."]  # fmt: skip


# ---- the sections ---------------------------------------------------------------------------


def _cell(e: Estimate | None) -> str:
    if e is None:
        return "—"
    digits = 0 if e.median >= 100 else 2 if e.median < 10 else 1
    if e.n < 2 or e.low == e.high:
        return f"{e.median:,.{digits}f}"
    return f"{e.median:,.{digits}f} ({e.low:,.{digits}f} to {e.high:,.{digits}f})"


def _rate(m: Measurement | None) -> str:
    return "—" if m is None else f"{m.mb_per_s:,.0f}" if m.mb_per_s >= 10 else f"{m.mb_per_s:.2g}"


def table(r: CodecResults, language: str) -> list[str]:
    """Size × codec: the message, its bytes, encode and decode time and rate."""
    idx = index(r)
    head = ["size", "codec", "items × features", "bytes", "encode µs", "decode µs",
            "encode MB/s", "decode MB/s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size in sizes(r):
        for codec in codecs(r, language):
            enc = idx.get((language, codec, "encode", size))
            dec = idx.get((language, codec, "decode", size))
            some = enc or dec
            if some is None:
                continue
            shape = f"{some.items} × {some.features}"
            row = [size_label(size), _codec(codec), shape, f"{some.bytes:,}",
                   _cell(enc.time_us if enc else None), _cell(dec.time_us if dec else None),
                   _rate(enc), _rate(dec)]  # fmt: skip
            lines.append("| " + " | ".join(row) + " |")
    return lines


def plot(r: CodecResults, path: Path) -> bool:
    """Time per message against the message's protobuf bytes, log-log: encode and decode side by
    side, a colour per codec and a line style per language."""
    if len(sizes(r)) < 2:
        return False
    from bench.report.agg import plt

    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    all_codecs = _ordered([m.codec for m in r.measurements])
    colors = {c: palette[i % len(palette)] for i, c in enumerate(all_codecs)}
    styles = {"python": ("-", "o"), "go": ("--", "s")}
    idx = index(r)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4), sharey=True)
    for ax, op in zip(axes, ("encode", "decode"), strict=True):
        for language in languages(r):
            line, marker = styles.get(language, (":", "^"))
            for codec in codecs(r, language):
                found = [m for s in sizes(r) if (m := idx.get((language, codec, op, s)))]
                if not found:
                    continue
                xs = [m.proto_bytes or m.size for m in found]
                ys = [m.time_us.median for m in found]
                err = [[m.time_us.median - m.time_us.low for m in found],
                       [m.time_us.high - m.time_us.median for m in found]]  # fmt: skip
                label = f"{_language(language)} {_codec(codec)}"
                ax.errorbar(xs, ys, yerr=err, linestyle=line, marker=marker, capsize=3,
                            color=colors[codec], label=label)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_xlabel("message size (bytes of protobuf)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("µs per message (median, 95% CI)")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _tools(r: CodecResults) -> str:
    names = {"pytest-benchmark": "pytest-benchmark", "go-bench": "`go test -bench`"}
    by_language = {m.language: m.source for m in r.measurements}
    return ", ".join(f"{names.get(s, s)} for {_language(lang)}" for lang, s in by_language.items())


def section(study: Study, run: RunResult, run_dir: Path) -> ReportSection:
    """The reading (for the top) and the codec sections (after the service results): where a
    call's CPU goes (bench/studies/codec_cost.py), then the codecs per message."""
    r = from_study(study)
    kept = ", ".join(f"`studies/{study.name}/{f}`" for f in r.files.values())
    lines = [
        *codec_cost.section(r, run),
        "## Encoding: protobuf and JSON per message",
        "",
        f"One answer at each size (bytes of protobuf: the same message in every language, its "
        f"items × features chosen by one rule), encoded and decoded in process ({_tools(r)}), "
        f"pinned to CPUs {r.cpus}. JSON is the REST services' own mapping (protobuf's JSON "
        "mapping, every field written, compact); json-dict is the json module on the same dict "
        "without protobuf, a reference. Times are the median per message with a 95% bootstrap "
        "interval; MB/s is over the codec's own bytes."
        + (f" The tools' own output: {kept}." if kept else ""),
        "",
    ]
    if r.measurements and plot(r, run_dir / FIGURE_PNG):
        lines += [f"![time per message against size]({FIGURE_PNG})", ""]
    for language in languages(r):
        lines += [f"### {_language(language)}", "", *table(r, language), ""]
    if r.errors:
        lines += ["What could not be measured:", "", *(f"- {e}" for e in r.errors), ""]
    return ReportSection(reading=codec_cost.reading(r, run) + reading(r), lines=lines)
