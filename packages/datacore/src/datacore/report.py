"""Self-contained HTML reports with matplotlib charts embedded as inline SVG.

The report needs no network: charts are inline SVG, styles are inline, there is no script.
Chart helpers return HTML fragments that generators put into
:class:`~datacore.generator.ReportSection`.  Charts are drawn on a
``matplotlib.figure.Figure`` with its own SVG canvas, so rendering a report never changes
the caller's backend, and the only rcParams it touches (deterministic SVG ids, text as
text) are set inside an ``rc_context`` and restored.

:func:`render_report` works from the files of a dataset directory alone (manifest,
telemetry and, given ``root``, the shard files for samples, schema and per-split
distributions); it never imports generator code.
"""

from __future__ import annotations

import html
import io
import math
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .generator import ReportSection
from .telemetry import Telemetry, _sort_key

_MAX_BARS = 60
_MAX_TABLE_BUCKETS = 2000
_FOLD_CHARS = 160
_SPLIT_COLORS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}


# -- charts -----------------------------------------------------------------------------------


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    # Constrained layout fits labels in one draw; bbox_inches="tight" drew every chart twice
    # (about half of a small run's time went into report charts).
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    # Deterministic SVG ids and no timestamp, so a re-rendered report is identical.
    with matplotlib.rc_context({"svg.hashsalt": "datacore", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg") :]


def fold_histogram(hist: Mapping[Any, float], max_bars: int = _MAX_BARS) -> tuple[list[str], list[float], str]:
    """Buckets to draw, their counts and a note; nothing is dropped.

    Numeric buckets beyond ``max_bars`` are merged into contiguous ranges (``"10-14"``);
    other buckets keep the ``max_bars - 1`` largest and fold the rest into one
    ``"other (k buckets)"`` bar holding their total.
    """
    values = {str(k): float(v) for k, v in hist.items()}
    keys = sorted(values, key=_sort_key)
    if len(keys) <= max_bars:
        return keys, [values[k] for k in keys], ""
    numeric = all(_sort_key(k)[0] == 0 for k in keys)
    if numeric:
        per = -(-len(keys) // max_bars)
        labels, counts = [], []
        for i in range(0, len(keys), per):
            group = keys[i : i + per]
            labels.append(group[0] if len(group) == 1 else f"{group[0]}-{group[-1]}")
            counts.append(sum(values[k] for k in group))
        return labels, counts, f" ({len(keys)} buckets in {len(labels)} ranges)"
    top = sorted(keys, key=lambda k: (-values[k], _sort_key(k)))[: max_bars - 1]
    rest = [k for k in keys if k not in set(top)]
    kept = sorted(top, key=_sort_key)
    other = sum(values[k] for k in rest)
    return (
        kept + [f"other ({len(rest)} buckets)"],
        [values[k] for k in kept] + [other],
        f" (top {len(kept)} of {len(keys)}; other = {_fmt(other)})",
    )


def _nice_ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2, 2.5 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def _tick_text(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:.3g}"


def _bars_svg(
    keys: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], Sequence[str]]],
    title: str,
    xlabel: str,
    ylabel: str,
    legend: bool,
) -> str:
    """Bars drawn as plain SVG (no plotting library: one chart costs ~1 ms, matplotlib's ~250 ms).

    ``series``: (name, values per key, colour per key); several series are drawn side by side.
    """
    esc = html.escape
    n, groups = len(keys), max(1, len(series))
    longest = max((len(k) for k in keys), default=0)
    rotate = n > 12 or longest * n > 60
    slot = max(14.0, min(40.0, 18.0 * groups))
    left, right, top = 64.0, 16.0, 34.0 + (16.0 if legend else 0.0)
    bottom = 40.0 + (min(longest, 24) * 5.5 if rotate else 12.0)
    plot_w = max(380.0, slot * n)
    plot_h = 200.0
    width, height = left + plot_w + right, top + plot_h + bottom
    peak = max((v for _, vals, _ in series for v in vals), default=0.0)
    ticks = _nice_ticks(peak)
    ymax = ticks[-1] or 1.0
    y = lambda v: top + plot_h - plot_h * v / ymax  # noqa: E731
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' "
        "font-family='DejaVu Sans, Arial, sans-serif' font-size='11' role='img'>",
        f"<title>{esc(title)}</title>",
        f"<text x='{width / 2:.1f}' y='16' text-anchor='middle' font-size='13'>{esc(title)}</text>",
    ]
    for t in ticks:
        ty = y(t)
        out.append(f"<line x1='{left:.1f}' x2='{left + plot_w:.1f}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='#e5e5e5'/>")
        out.append(f"<text x='{left - 6:.1f}' y='{ty + 4:.1f}' text-anchor='end'>{_tick_text(t)}</text>")
    band = plot_w / max(1, n)
    width_bar = band * 0.8 / groups
    for j, (name, vals, colors) in enumerate(series):
        for i, v in enumerate(vals):
            x = left + band * i + band * 0.1 + j * width_bar
            h = plot_h * max(0.0, v) / ymax
            label = f"{name + ', ' if legend else ''}{keys[i]}: {_fmt(v)}"
            out.append(
                f"<rect x='{x:.1f}' y='{top + plot_h - h:.1f}' width='{max(width_bar - 1, 1):.1f}' height='{h:.1f}' "
                f"fill='{colors[i]}'><title>{esc(label)}</title></rect>"
            )
    every = max(1, math.ceil(n / 60))  # at most 60 labels under the axis
    base = top + plot_h
    for i, k in enumerate(keys):
        if i % every:
            continue
        cx = left + band * (i + 0.5)
        text = esc(k if len(k) <= 24 else k[:23] + "…")
        if rotate:
            out.append(
                f"<text transform='translate({cx + 3:.1f},{base + 8:.1f}) rotate(-60)' text-anchor='end' font-size='10'>{text}</text>"
            )
        else:
            out.append(f"<text x='{cx:.1f}' y='{base + 15:.1f}' text-anchor='middle' font-size='10'>{text}</text>")
    out.append(f"<line x1='{left:.1f}' x2='{left + plot_w:.1f}' y1='{base:.1f}' y2='{base:.1f}' stroke='#333'/>")
    out.append(f"<line x1='{left:.1f}' x2='{left:.1f}' y1='{top:.1f}' y2='{base:.1f}' stroke='#333'/>")
    if xlabel:
        out.append(f"<text x='{left + plot_w / 2:.1f}' y='{height - 6:.1f}' text-anchor='middle'>{esc(xlabel)}</text>")
    if ylabel:
        out.append(
            f"<text transform='translate(14,{top + plot_h / 2:.1f}) rotate(-90)' text-anchor='middle'>{esc(ylabel)}</text>"
        )
    if legend:
        lx = left
        for name, _, colors in series:
            out.append(f"<rect x='{lx:.1f}' y='26' width='10' height='10' fill='{colors[0] if colors else '#4c72b0'}'/>")
            out.append(f"<text x='{lx + 14:.1f}' y='35'>{esc(name)}</text>")
            lx += 22 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def bar_chart_svg(hist: Mapping[Any, float], title: str, xlabel: str = "", ylabel: str = "count") -> str:
    """A bar chart of a histogram (bucket -> count) as an inline SVG fragment (long tails folded, never cut)."""
    keys, counts, note = fold_histogram(hist)
    colors = ["#999999" if k.startswith("other (") else "#4c72b0" for k in keys]
    return _bars_svg(keys, [("count", counts, colors)], title + note, xlabel, ylabel, legend=False)


def grouped_bar_chart_svg(series: Mapping[str, Mapping[str, float]], title: str, ylabel: str = "share") -> str:
    """Bars side by side per bucket, one colour per series (e.g. the share of each value per split)."""
    union: dict[str, float] = {}
    for h in series.values():
        for k, v in h.items():
            union[str(k)] = union.get(str(k), 0.0) + float(v)
    keys, _, note = fold_histogram(union)
    folded_other = bool(keys) and keys[-1].startswith("other (")
    kept = set(keys[:-1] if folded_other else keys)
    numeric_ranges = bool(note) and not folded_other
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    drawn = []
    for j, (name, h) in enumerate(series.items()):
        vals = {str(k): float(v) for k, v in h.items()}
        if numeric_ranges:
            ys = _range_sums(vals, keys)
        else:
            ys = [vals.get(k, 0.0) for k in (keys[:-1] if folded_other else keys)]
            if folded_other:
                ys.append(sum(v for k, v in vals.items() if k not in kept))
        color = _SPLIT_COLORS.get(name, palette[j % len(palette)])
        drawn.append((str(name), ys, [color] * len(ys)))
    return _bars_svg(keys, drawn, title + note, "", ylabel, legend=True)


def _range_sums(vals: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    out = []
    for lab in labels:
        lo, _, hi = lab.partition("-") if not lab.startswith("-") else (lab, "", "")
        lo_f = float(lo)
        hi_f = float(hi) if hi else lo_f
        out.append(sum(v for k, v in vals.items() if lo_f <= float(k) <= hi_f))
    return out


def line_chart_svg(series: Mapping[str, Sequence[float]], title: str, xlabel: str = "", ylabel: str = "") -> str:
    """A line chart of named series (name -> y values over x = 0, 1, ...) as inline SVG."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    for name, ys in series.items():
        ax.plot(range(len(ys)), list(ys), label=str(name), linewidth=1.4)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


# viridis at 9 stops (matplotlib's colormap, sampled); cells interpolate linearly between them
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=float,
)
_CELL = 16


def _viridis(m: np.ndarray) -> list[str]:
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    x = (m.ravel() - lo) / (hi - lo) if hi > lo else np.zeros(m.size)
    pos = np.nan_to_num(x) * (len(_VIRIDIS) - 1)
    i = np.minimum(pos.astype(int), len(_VIRIDIS) - 2)
    f = (pos - i)[:, None]
    rgb = np.rint(_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def heatmap_svg(matrix: Any, row_labels: Sequence[Any], col_labels: Sequence[Any], title: str, cbar_label: str = "count") -> str:
    """A heatmap of a 2-D array (rows x columns) as plain inline SVG: one coloured cell per value,
    its value in the cell's tooltip, the colour scale from the least to the largest value.

    No plotting library: importing matplotlib cost ~1.5 CPU-s per run, more than some runs.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"heatmap_svg needs a 2-D matrix, got shape {m.shape}")
    rows, cols = m.shape
    left, top = 40, 28
    width, height = left + cols * _CELL + 120, top + rows * _CELL + 40
    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="9">',
        f'<text x="{left}" y="14" font-size="12">{esc(title)}</text>',
    ]
    colors = _viridis(m)
    for r in range(rows):
        y = top + r * _CELL
        out.append(f'<text x="{left - 4}" y="{y + 11}" text-anchor="end">{esc(str(row_labels[r]))}</text>')
        for c in range(cols):
            out.append(
                f'<rect x="{left + c * _CELL}" y="{y}" width="{_CELL}" height="{_CELL}" fill="{colors[r * cols + c]}">'
                f"<title>{esc(str(row_labels[r]))}, {esc(str(col_labels[c]))}: {m[r, c]:.3g}</title></rect>"
            )
    yl = top + rows * _CELL + 12
    for c in range(cols):
        out.append(f'<text x="{left + c * _CELL + _CELL / 2}" y="{yl}" text-anchor="middle">{esc(str(col_labels[c]))}</text>')
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    lx = left + cols * _CELL + 16
    for k in range(len(_VIRIDIS)):
        r, g, b = (int(v) for v in _VIRIDIS[len(_VIRIDIS) - 1 - k])
        out.append(f'<rect x="{lx}" y="{top + k * 10}" width="12" height="10" fill="#{r:02x}{g:02x}{b:02x}"/>')
    out.append(f'<text x="{lx + 16}" y="{top + 8}">{hi:.3g}</text>')
    out.append(f'<text x="{lx + 16}" y="{top + len(_VIRIDIS) * 10}">{lo:.3g}</text>')
    out.append(f'<text x="{lx}" y="{top + len(_VIRIDIS) * 10 + 14}">{esc(cbar_label)}</text>')
    out.append("</svg>")
    return "".join(out)


def table_html(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table (values escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _raw_table(header: Sequence[Any], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table whose cells are already HTML (each escaped by the caller)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:,.4g}" if not v.is_integer() else f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _e(v: Any) -> str:
    return html.escape(_fmt(v))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}
table.rec td:nth-child(n+2),table.wide td{text-align:left}table.rec td:first-child code{white-space:nowrap;word-break:normal}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem;max-height:20rem;white-space:pre-wrap;word-break:break-all}
code{font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.chart svg{max-width:100%;height:auto}.grid{display:flex;flex-wrap:wrap;gap:1rem}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.note{color:#666;font-size:.85rem}
details summary{cursor:pointer}
"""


# -- sections ---------------------------------------------------------------------------------


def _fold(text: str, full: str | None = None) -> str:
    """Escaped text; longer than a line or two, it is folded under a <details> with its length
    (opened, it shows ``full``: the value indented, for JSON)."""
    if len(text) <= _FOLD_CHARS:
        return f"<code>{html.escape(text)}</code>"
    return (
        f"<details><summary><code>{html.escape(text[:_FOLD_CHARS])}</code>… ({len(text):,} chars)</summary>"
        f"<pre>{html.escape(full if full is not None else text)}</pre></details>"
    )


def _value_full(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode()


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _samples_section(scans: Mapping[str, SplitScan]) -> str:
    parts = ["<h2>Sample records</h2>"]
    for s, scan in scans.items():
        parts.append(f"<h3>{html.escape(s)} ({len(scan.samples)} of {scan.total:,})</h3>")
        if not scan.samples:
            parts.append("<p class='note'>no records in this split</p>")
        for i, rec in enumerate(scan.samples):
            rows = [[f"<code>{html.escape(str(k))}</code>", _fold(_value_text(v), _value_full(v))] for k, v in rec.items()]
            parts.append(
                f"<details{' open' if i == 0 else ''}><summary>record {i + 1}: <code>{html.escape(str(rec.get('id', '')))}</code></summary>"
            )
            parts.append(_raw_table(["field", "value"], rows, "rec") + "</details>")
    return "".join(parts)


def _types_text(fs: FieldStats) -> str:
    total = sum(fs.types.values()) or 1
    items = sorted(fs.types.items(), key=lambda kv: -kv[1])
    out = ", ".join(f"{t} {100 * c / total:.0f}%" if len(items) > 1 else t for t, c in items)
    it = fs.item_type()
    return out + (f" of {it}" if it else "")


def _schema_section(overall: SplitScan) -> str:
    n = overall.scanned
    parts = ["<h2>Schema</h2>"]
    if overall.scanned < overall.total:
        parts.append(
            f"<p class='note'>From {n:,} of {overall.total:,} records: up to {SCAN_LIMIT:,} per split,"
            " the first records of each shard file.</p>"
        )
    else:
        parts.append(f"<p class='note'>From all {n:,} records.</p>")
    rows = []
    for name in sorted(overall.fields, key=lambda k: (k.startswith("meta."), k)):
        fs = overall.fields[name]
        lengths = fs.lengths
        if lengths:
            arr = np.repeat(np.array(list(lengths), dtype=float), list(lengths.values()))
            length = f"{int(arr.min())} / {np.median(arr):g} / {int(arr.max())}"
        else:
            length = "-"
        rows.append(
            [
                f"<code>{html.escape(name)}</code>",
                html.escape(_types_text(fs)),
                f"{100 * fs.present / n:.1f}%" if n else "-",
                _e(fs.min) if fs.min is not None else "-",
                _e(fs.max) if fs.max is not None else "-",
                (">= " if fs.distinct_capped else "") + _e(fs.distinct),
                length,
            ]
        )
    parts.append(_raw_table(["field", "type(s)", "present", "min", "max", "distinct", "length min / median / max"], rows))
    charts = [
        f"<div class='chart'>{bar_chart_svg(fs.lengths, f'{name}: length', 'length')}</div>"
        for name, fs in sorted(overall.fields.items())
        if fs.lengths
    ]
    if charts:
        parts.append("<h3>Length distributions</h3><div class='grid'>" + "".join(charts) + "</div>")
    return "".join(parts)


def _split_distributions_section(scans: Mapping[str, SplitScan]) -> str:
    """Per field: its distribution in each split as shares, side by side (does val look like train?)."""
    live = {s: sc for s, sc in scans.items() if sc.scanned}
    if len(live) < 2:
        return ""
    names = sorted({f for sc in live.values() for f in sc.fields})
    charts = []
    for name in names:
        stats = {s: sc.fields[name] for s, sc in live.items() if name in sc.fields}
        if len(stats) < 2:
            continue
        # One kind of histogram per field, chosen over all splits, so the bars line up.
        counts = [fs.value_counts for fs in stats.values()]
        union = set().union(*(c for c in counts if c is not None)) if all(c is not None for c in counts) else None
        main = {fs.main_type() for fs in stats.values()}
        if union is not None and 1 < len(union) <= 40 and main <= {"string", "boolean", "integer"}:
            kind, hists = "value", {s: dict(fs.value_counts or {}) for s, fs in stats.items()}
        elif any(fs.lengths for fs in stats.values()):
            kind, hists = "length", {s: {str(k): v for k, v in fs.lengths.items()} for s, fs in stats.items()}
        elif any(fs.numbers for fs in stats.values()):
            edges = _edges([x for fs in stats.values() for x in fs.numbers])
            kind, hists = "value (binned)", {s: _bins(fs.numbers, edges) for s, fs in stats.items()}
        else:
            continue
        per = {s: {str(k): v / (sum(h.values()) or 1) for k, v in h.items()} for s, h in hists.items()}
        charts.append(f"<div class='chart'>{grouped_bar_chart_svg(per, f'{name}: {kind} share per split')}</div>")
    if not charts:
        return ""
    return "<h2>Per-split distributions</h2><div class='grid'>" + "".join(charts) + "</div>"


def _edges(numbers: Sequence[float], k: int = 20) -> np.ndarray:
    arr = np.asarray(numbers, dtype=float)
    lo, hi = float(arr.min()), float(arr.max())
    return np.linspace(lo, hi if hi > lo else lo + 1, k + 1)


def _bins(numbers: Sequence[float], edges: np.ndarray) -> dict[str, int]:
    counts, _ = np.histogram(np.asarray(numbers, dtype=float), bins=edges)
    return {f"{edges[i]:.3g}": int(c) for i, c in enumerate(counts)}


def _delivery_section(manifest: Mapping[str, Any]) -> str:
    d = manifest.get("delivery")
    if not d:
        return ""
    ok = d.get("ok")
    verdict = (
        "<span class='ok'>all delivered</span>"
        if ok
        else (
            "<span class='bad'>SHORTFALL (kept: --allow-shortfall)</span>"
            if d.get("shortfall_allowed")
            else "<span class='bad'>SHORTFALL</span>"
        )
    )
    rows = [
        [
            "<b>-n (records)</b>",
            _e(d.get("requested")),
            "exact",
            _e(d.get("delivered")),
            "",
            "<span class='ok'>yes</span>" if d.get("requested") == d.get("delivered") else "<span class='bad'>no</span>",
        ]
    ]
    for r in d.get("strata") or []:
        rows.append(
            [
                f"<code>{html.escape(str(r['stratum']))}</code>",
                f"{r['share']:.1%} ({r['requested']:,})",
                f"±{r['tolerance']:.1%}",
                f"{r['delivered_share']:.1%} ({r['delivered']:,})",
                f"{(round(100 * (r['delivered_share'] - r['share']), 1) or 0.0):+.1f} pp",
                "<span class='ok'>yes</span>" if r["ok"] else "<span class='bad'>no</span>",
            ]
        )
    return f"<h2>Requested vs delivered</h2><p>{verdict}</p>" + _raw_table(
        ["stratum", "asked", "tolerance", "delivered", "difference", "within tolerance"], rows
    )


def _timing_section(manifest: Mapping[str, Any]) -> str:
    shards = [s for s in manifest.get("shards", []) if s.get("seconds") is not None]
    if not shards:
        return ""
    secs = np.array([float(s["seconds"]) for s in shards])
    counts = np.array([int(s.get("count", 0)) for s in shards])
    rate = counts / np.maximum(secs, 1e-9)
    parts = [
        "<h2>Shard timings</h2>",
        f"<p>{len(shards)} shards, {secs.sum():,.2f} worker-seconds in all; per shard {secs.min():.3g}-{secs.max():.3g} s "
        f"(median {np.median(secs):.3g} s), {np.median(rate):,.0f} records/s median.</p>",
    ]
    parts.append("<div class='grid'>")
    parts.append(
        f"<div class='chart'>{bar_chart_svg({str(s['index']): float(s['seconds']) for s in shards}, 'seconds per shard', 'shard', 's')}</div>"
    )
    parts.append(
        f"<div class='chart'>{bar_chart_svg({str(s['index']): float(r) for s, r in zip(shards, rate)}, 'records/s per shard', 'shard', 'records/s')}</div>"
    )
    parts.append("</div><details><summary>table</summary>")
    parts.append(
        table_html(
            ["shard", "records", "seconds", "records/s"],
            [[s["index"], int(c), float(t), float(r)] for s, c, t, r in zip(shards, counts, secs, rate)],
        )
    )
    parts.append("</details>")
    return "".join(parts)


def _git_commit(module_top: str) -> str | None:
    """The git commit of the checkout a top-level module lives in (without importing it), if any."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module_top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    where = Path(spec.origin).parent if spec.origin and spec.origin != "namespace" else None
    if where is None and spec.submodule_search_locations:
        where = Path(next(iter(spec.submodule_search_locations)))
    if where is None or not where.is_dir():
        return None
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()[:12] + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def environment(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Versions, git commit, Python, platform and executor: recorded ones from the manifest, else this process's."""
    rec = dict(manifest.get("environment") or {})
    ref = str(manifest.get("generator_ref") or "")
    top = ref.split(":")[0].split(".")[0] if ref else ""
    env = {
        "datacore": manifest.get("datacore_version"),
        "generator": f"{manifest.get('generator')} {manifest.get('version')}",
        "generator class": ref or "-",
        "git commit": rec.get("git_commit")
        or (_git_commit(top) if top else None)
        or ((c + " (datacore's checkout)") if (c := _git_commit("datacore")) else "not a git checkout"),
        "python": rec.get("python") or sys.version.split()[0],
        "platform": rec.get("platform") or platform.platform(),
        "executor": rec.get("executor") or manifest.get("executor") or "not recorded",
    }
    for k, v in rec.items():
        if k not in ("git_commit", "python", "platform", "executor"):
            env[k] = v
    return env


def _histograms_section(telemetry: Telemetry) -> str:
    if not telemetry.histograms:
        return ""
    parts = ["<h2>Histograms</h2><div class='grid'>"]
    for name in sorted(telemetry.histograms):
        parts.append(f"<div class='chart'>{bar_chart_svg(telemetry.histograms[name], name)}</div>")
    parts.append("</div>")
    for name in sorted(telemetry.histograms):
        h = telemetry.histograms[name]
        keys = sorted(h, key=_sort_key)
        total = sum(h.values()) or 1
        shown = keys[:_MAX_TABLE_BUCKETS]
        rows = [[k, h[k], f"{100 * h[k] / total:.2f}%"] for k in shown]
        if len(keys) > len(shown):
            rest = keys[len(shown) :]
            rows.append(
                [
                    f"other ({len(rest)} buckets, listed in telemetry.json)",
                    sum(h[k] for k in rest),
                    f"{100 * sum(h[k] for k in rest) / total:.2f}%",
                ]
            )
        parts.append(
            f"<details><summary>{html.escape(name)}: all {len(keys):,} buckets</summary>{table_html(['bucket', 'count', 'share'], rows)}</details>"
        )
    return "".join(parts)


def render_report(
    manifest: Mapping[str, Any],
    telemetry: Telemetry,
    sections: Sequence[ReportSection] = (),
    root: Any = None,
    scanned: Any = None,
) -> str:
    """Render report.html: summary, environment, requested vs delivered, samples, schema, per-split
    distributions, shard timings, histograms, counters, config, files, and the generator's sections.

    ``root`` is the dataset directory: with it, samples, schema and per-split distributions are
    read from the shard files (up to :data:`SCAN_LIMIT` records per split), or taken from
    ``scanned`` (what ``scan_dataset(root, manifest, with_overall=True)`` returned) when given.
    """
    gen = html.escape(str(manifest.get("generator")))
    spec = manifest.get("spec", {})
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{gen} dataset report</title>"]
    parts.append(f"<style>{_CSS}</style></head><body><h1>{gen} {html.escape(str(manifest.get('version')))}: dataset report</h1>")
    splits = manifest.get("splits", {})
    total = manifest.get("records", 0) or 0
    parts.append("<h2>Summary</h2>")
    parts.append(
        table_html(
            ["field", "value"],
            [
                ["records", total],
                ["requested (-n)", spec.get("n") if spec.get("n") is not None else "-"],
                ["seed", spec.get("seed")],
                ["shards", len(manifest.get("shards", []))],
                ["compression", spec.get("compress") or "none"],
                ["split ratios", ", ".join(str(r) for r in spec.get("split_ratios", []))],
            ],
        )
    )
    parts.append(
        table_html(
            ["split", "records", "share"],
            [[s, c, f"{100 * c / total:.2f}%" if total else "-"] for s, c in splits.items()],
        )
    )
    parts.append("<h2>Environment</h2>")
    parts.append(table_html(["what", "value"], [[k, v] for k, v in environment(manifest).items()]))
    parts.append(_delivery_section(manifest))
    if root is not None or scanned is not None:
        scans, overall = scanned if scanned is not None else scan_dataset(root, manifest, with_overall=True)
        parts.append(_samples_section(scans))
        parts.append(_schema_section(overall))
        parts.append(_split_distributions_section(scans))
    else:
        parts.append("<p class='note'>Samples and schema need the dataset directory (render_report(..., root=DIR)).</p>")
    parts.append(_timing_section(manifest))
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2><div class='chart'>{sec.html}</div>")
    parts.append(_histograms_section(telemetry))
    if telemetry.counters:
        parts.append("<h2>Counters</h2>")
        parts.append(table_html(["counter", "value"], [[k, telemetry.counters[k]] for k in sorted(telemetry.counters)]))
    parts.append("<h2>Config</h2><pre>")
    parts.append(html.escape(orjson.dumps(spec.get("config", {}), option=orjson.OPT_INDENT_2).decode()))
    parts.append("</pre>")
    files = [
        (e["path"], e["records"], e["bytes"], e["sha256"][:16]) for sh in manifest.get("shards", []) for e in sh["files"].values()
    ]
    parts.append(f"<h2>Files ({len(files)})</h2>")
    parts.append(table_html(["path", "records", "bytes", "sha256 (prefix)"], files[:200]))
    if len(files) > 200:
        parts.append(f"<p>... and {len(files) - 200} more (see dataset.json)</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


# -- scanning the records of a dataset directory (schema, samples) ----------------------------

SCAN_LIMIT = 2_000
"""Records read per split for the schema and distribution tables (the report says so when fewer than all).

They are taken evenly from the split's shard files (the first records of each), so the tables see
the whole run, not its first shards.  2,000 per split keeps finalize's serial scan to a fraction of
a second even for large records (20,000 took 3.4 CPU-s on gatling-sid traces); the exact counts
that the dataset's correctness rests on come from telemetry, not from this scan."""

_DISTINCT_CAP = 100_000
_MAX_VALUES = 200
_SCALARS = frozenset(("string", "integer", "number", "boolean", "null"))


_JSON_TYPES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(v: Any) -> str:
    """The JSON type name of a decoded value: string, integer, number, boolean, null, array, object."""
    t = _JSON_TYPES.get(type(v))  # exact types first: decoded JSON has no subclasses
    if t is not None:
        return t
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


class FieldStats:
    """What one field looks like over the records scanned: types, presence, range, distinct values, lengths."""

    def __init__(self) -> None:
        self.types: dict[str, int] = {}
        self.present = 0
        self.min: float | str | None = None
        self.max: float | str | None = None
        self._distinct: set[Any] = set()
        self.distinct_capped = False
        self.lengths: dict[int, int] = {}
        self.item_types: dict[str, int] = {}
        # counts per scalar value while there are few of them (None once there are too many)
        self.value_counts: dict[str, int] | None = {}
        self.numbers: list[float] = []

    def add(self, v: Any) -> None:
        t = _JSON_TYPES.get(type(v)) or json_type(v)
        types = self.types
        types[t] = types.get(t, 0) + 1
        self.present += 1
        scalar = t in _SCALARS
        if t == "integer" or t == "number":
            if self.min is None or v < self.min:  # type: ignore[operator]
                self.min = v
            if self.max is None or v > self.max:  # type: ignore[operator]
                self.max = v
            self.numbers.append(float(v))
        counts = self.value_counts
        if counts is not None:
            if scalar and t != "number":
                k = str(v) if t != "boolean" else ("true" if v else "false")
                counts[k] = counts.get(k, 0) + 1
                if len(counts) > _MAX_VALUES:
                    self.value_counts = None
            else:
                self.value_counts = None
        if t == "string" or t == "array":
            n = len(v)
            self.lengths[n] = self.lengths.get(n, 0) + 1
            if t == "array":
                items = self.item_types
                for x in v[:64]:
                    it = _JSON_TYPES.get(type(x)) or json_type(x)
                    items[it] = items.get(it, 0) + 1
        if not self.distinct_capped:
            self._distinct.add((t, v if scalar else orjson.dumps(v, option=orjson.OPT_SORT_KEYS)))
            if len(self._distinct) >= _DISTINCT_CAP:
                self.distinct_capped = True

    def merge(self, other: FieldStats) -> None:
        """Add ``other``'s counts into these (what adding its values one by one would give)."""
        for t, c in other.types.items():
            self.types[t] = self.types.get(t, 0) + c
        self.present += other.present
        for bound in (other.min, other.max):
            if bound is not None:
                self.min = bound if self.min is None or bound < self.min else self.min  # type: ignore[operator]
                self.max = bound if self.max is None or bound > self.max else self.max  # type: ignore[operator]
        self.numbers += other.numbers
        if self.value_counts is not None:
            if other.value_counts is None:
                self.value_counts = None
            else:
                for k, c in other.value_counts.items():
                    self.value_counts[k] = self.value_counts.get(k, 0) + c
                if len(self.value_counts) > _MAX_VALUES:
                    self.value_counts = None
        for n, c in other.lengths.items():
            self.lengths[n] = self.lengths.get(n, 0) + c
        for t, c in other.item_types.items():
            self.item_types[t] = self.item_types.get(t, 0) + c
        if not self.distinct_capped:
            self._distinct |= other._distinct
            if other.distinct_capped or len(self._distinct) >= _DISTINCT_CAP:
                self.distinct_capped = True

    @property
    def distinct(self) -> int:
        return len(self._distinct)

    def main_type(self) -> str:
        """The most frequent non-null type (``null`` when the field is only ever null)."""
        non_null = {t: c for t, c in self.types.items() if t != "null"}
        pool = non_null or self.types
        return max(sorted(pool), key=lambda t: pool[t]) if pool else "null"

    def item_type(self) -> str | None:
        """For arrays: the most frequent item type (None if no items were seen)."""
        if not self.item_types:
            return None
        return max(sorted(self.item_types), key=lambda t: self.item_types[t])


class SplitScan:
    """The scan of one split: records read, of how many, a few samples, stats per field."""

    def __init__(self, split: str, total: int) -> None:
        self.split = split
        self.total = total
        self.scanned = 0
        self.samples: list[dict[str, Any]] = []
        self.fields: dict[str, FieldStats] = {}

    def add(self, rec: dict[str, Any], n_samples: int) -> None:
        self.scanned += 1
        if len(self.samples) < n_samples:
            self.samples.append(rec)
        fields = self.fields
        for k, v in rec.items():
            fs = fields.get(k)
            if fs is None:  # not setdefault: that would build a FieldStats per value
                fs = fields[k] = FieldStats()
            fs.add(v)
            if type(v) is dict:
                for mk, mv in v.items():
                    name = f"{k}.{mk}"
                    fs = fields.get(name)
                    if fs is None:
                        fs = fields[name] = FieldStats()
                    fs.add(mv)


def scan_dataset(
    root: Any, manifest: Mapping[str, Any], limit: int = SCAN_LIMIT, n_samples: int = 5, with_overall: bool = False
) -> Any:
    """Read up to ``limit`` records of each split of the dataset at ``root`` (files as in the manifest).

    The records are spread over the split's shard files: the first ``ceil(limit / files)``
    of each, in shard order (a file with fewer gives the rest to the files after it).
    A split's scan says how many of its records it saw.
    Returns ``{split: SplitScan}``, and with ``with_overall`` also one scan of all splits together.
    """
    from .jsonl import read_jsonl

    splits = manifest.get("splits", {})
    scans = {s: SplitScan(s, int(c)) for s, c in splits.items()}
    overall = SplitScan("all", int(manifest.get("records", 0) or sum(splits.values())))
    files: dict[str, list[dict[str, Any]]] = {}
    for sh in manifest.get("shards", []):
        for s, e in sh["files"].items():
            scans.setdefault(s, SplitScan(s, 0))
            if e.get("records"):
                files.setdefault(s, []).append(e)
    for s, entries in files.items():
        scan = scans[s]
        for k, e in enumerate(entries):
            left = limit - scan.scanned
            if left <= 0:
                break
            quota = -(-left // (len(entries) - k))  # an even share of what is left
            taken = 0
            for rec in read_jsonl(Path(root) / e["path"]):
                scan.add(rec, n_samples)
                taken += 1
                if taken >= quota:
                    break
    if not with_overall:
        return scans
    # The overall scan is the splits' merged (each record was profiled once, not twice).
    overall.scanned = sum(sc.scanned for sc in scans.values())
    for sc in scans.values():
        for name, fs in sc.fields.items():
            overall.fields.setdefault(name, FieldStats()).merge(fs)
    return scans, overall


def merged_fields(scans: Mapping[str, SplitScan]) -> dict[str, FieldStats]:
    """Field stats over all splits (types and presence summed; used for the card's field list)."""
    out: dict[str, FieldStats] = {}
    for scan in scans.values():
        for name, fs in scan.fields.items():
            m = out.setdefault(name, FieldStats())
            for t, c in fs.types.items():
                m.types[t] = m.types.get(t, 0) + c
            for t, c in fs.item_types.items():
                m.item_types[t] = m.item_types.get(t, 0) + c
            m.present += fs.present
    return out
