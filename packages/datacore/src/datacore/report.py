"""Self-contained HTML reports with matplotlib charts embedded as inline SVG.

The report needs no network: charts are inline SVG, styles are inline.  Chart helpers
return HTML fragments that generators put into :class:`~datacore.generator.ReportSection`.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from .generator import ReportSection
from .telemetry import Telemetry, _sort_key

_MAX_BARS = 60


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Deterministic SVG ids and no timestamp, so a re-rendered report is identical.
    matplotlib.rcParams["svg.hashsalt"] = "datacore"
    matplotlib.rcParams["svg.fonttype"] = "none"
    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def bar_chart_svg(hist: Mapping[Any, float], title: str, xlabel: str = "", ylabel: str = "count") -> str:
    """A bar chart of a histogram (bucket -> count) as an inline SVG fragment."""
    plt = _plt()
    keys = sorted((str(k) for k in hist), key=_sort_key)
    values = {str(k): v for k, v in hist.items()}
    note = ""
    if len(keys) > _MAX_BARS:
        top = sorted(keys, key=lambda k: -values[k])[:_MAX_BARS]
        keys = sorted(top, key=_sort_key)
        note = f" (top {_MAX_BARS} of {len(hist)})"
    fig, ax = plt.subplots(figsize=(max(5.0, min(14.0, 0.28 * len(keys) + 2)), 3.2))
    ax.bar(range(len(keys)), [values[k] for k in keys], color="#4c72b0")
    ax.set_xticks(range(len(keys)))
    # Upright labels only while they fit under their bars (long category names overlap).
    longest = max((len(k) for k in keys), default=0)
    if len(keys) > 12:
        ax.set_xticklabels(keys, rotation=90, fontsize=8)
    elif longest * len(keys) > 60:
        ax.set_xticklabels(keys, rotation=30, ha="right", fontsize=8)
    else:
        ax.set_xticklabels(keys, fontsize=8)
    ax.set_title(title + note, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def line_chart_svg(series: Mapping[str, Sequence[float]], title: str, xlabel: str = "", ylabel: str = "") -> str:
    """A line chart of named series (name -> y values over x = 0, 1, ...) as inline SVG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, ys in series.items():
        ax.plot(range(len(ys)), list(ys), label=str(name), linewidth=1.4)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def heatmap_svg(matrix: Any, row_labels: Sequence[Any], col_labels: Sequence[Any], title: str, cbar_label: str = "count") -> str:
    """A heatmap of a 2-D array (rows x columns) with labels, as inline SVG."""
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    h = max(2.5, min(12.0, 0.25 * m.shape[0] + 1.5))
    w = max(4.0, min(14.0, 0.3 * m.shape[1] + 2.5))
    fig, ax = plt.subplots(figsize=(w, h))
    im = ax.imshow(m, aspect="auto", cmap="viridis", interpolation="nearest")
    if m.shape[1] <= 64:
        ax.set_xticks(range(m.shape[1]))
        ax.set_xticklabels([str(c) for c in col_labels], fontsize=7, rotation=90 if m.shape[1] > 16 else 0)
    if m.shape[0] <= 48:
        ax.set_yticks(range(m.shape[0]))
        ax.set_yticklabels([str(r) for r in row_labels], fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=cbar_label)
    return _svg(fig)


def table_html(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table (values escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if not v.is_integer() else f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem;max-height:20rem}
.chart svg{max-width:100%;height:auto}.grid{display:flex;flex-wrap:wrap;gap:1rem}
"""


def render_report(
    manifest: Mapping[str, Any], telemetry: Telemetry, sections: Sequence[ReportSection] = (), root: Any = None
) -> str:
    """Render report.html: run summary, splits, files, counters, one chart per histogram, extras."""
    gen = html.escape(str(manifest.get("generator")))
    spec = manifest.get("spec", {})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{gen} dataset report</title>"]
    parts.append(f"<style>{_CSS}</style></head><body><h1>{gen} {html.escape(str(manifest.get('version')))}: dataset report</h1>")
    splits = manifest.get("splits", {})
    total = manifest.get("records", 0) or 0
    parts.append("<h2>Summary</h2>")
    parts.append(
        table_html(
            ["field", "value"],
            [
                ["records", total],
                ["seed", spec.get("seed")],
                ["shards", len(manifest.get("shards", []))],
                ["compression", spec.get("compress") or "none"],
                ["split ratios", ", ".join(str(r) for r in spec.get("split_ratios", []))],
                ["datacore", manifest.get("datacore_version")],
            ],
        )
    )
    parts.append(
        table_html(
            ["split", "records", "share"],
            [[s, c, f"{100 * c / total:.2f}%" if total else "-"] for s, c in splits.items()],
        )
    )
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2><div class='chart'>{sec.html}</div>")
    if telemetry.histograms:
        parts.append("<h2>Histograms</h2><div class='grid'>")
        for name in sorted(telemetry.histograms):
            parts.append(f"<div class='chart'>{bar_chart_svg(telemetry.histograms[name], name)}</div>")
        parts.append("</div>")
    if telemetry.counters:
        parts.append("<h2>Counters</h2>")
        parts.append(table_html(["counter", "value"], [[k, telemetry.counters[k]] for k in sorted(telemetry.counters)]))
    parts.append("<h2>Config</h2><pre>")
    parts.append(html.escape(orjson.dumps(spec.get("config", {}), option=orjson.OPT_INDENT_2).decode()))
    parts.append("</pre>")
    files = [(e["path"], e["records"], e["bytes"], e["sha256"][:16]) for sh in manifest.get("shards", []) for e in sh["files"].values()]
    parts.append(f"<h2>Files ({len(files)})</h2>")
    parts.append(table_html(["path", "records", "bytes", "sha256 (prefix)"], files[:200]))
    if len(files) > 200:
        parts.append(f"<p>... and {len(files) - 200} more (see dataset.json)</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


# -- scanning the records of a dataset directory (schema, samples) ----------------------------

SCAN_LIMIT = 20_000
"""Records read per split for the schema and distribution tables (the report says so when fewer than all)."""

_DISTINCT_CAP = 100_000


def json_type(v: Any) -> str:
    """The JSON type name of a decoded value: string, integer, number, boolean, null, array, object."""
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

    def add(self, v: Any) -> None:
        t = json_type(v)
        self.types[t] = self.types.get(t, 0) + 1
        self.present += 1
        if t in ("integer", "number"):
            self.min = v if self.min is None or v < self.min else self.min  # type: ignore[operator]
            self.max = v if self.max is None or v > self.max else self.max  # type: ignore[operator]
        if t in ("string", "array"):
            n = len(v)
            self.lengths[n] = self.lengths.get(n, 0) + 1
        if t == "array":
            for x in v[:64]:
                it = json_type(x)
                self.item_types[it] = self.item_types.get(it, 0) + 1
        if not self.distinct_capped:
            key = v if t in ("string", "integer", "number", "boolean", "null") else orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
            self._distinct.add((t, key))
            if len(self._distinct) >= _DISTINCT_CAP:
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
        for k, v in rec.items():
            self.fields.setdefault(k, FieldStats()).add(v)
            if isinstance(v, dict):
                for mk, mv in v.items():
                    self.fields.setdefault(f"{k}.{mk}", FieldStats()).add(mv)


def scan_dataset(
    root: Any, manifest: Mapping[str, Any], limit: int = SCAN_LIMIT, n_samples: int = 5
) -> dict[str, SplitScan]:
    """Read up to ``limit`` records of each split of the dataset at ``root`` (files as in the manifest).

    Shards are read in index order; a split's scan says how many of its records it saw.
    """
    from pathlib import Path

    from .jsonl import read_jsonl

    splits = manifest.get("splits", {})
    scans = {s: SplitScan(s, int(c)) for s, c in splits.items()}
    for sh in manifest.get("shards", []):
        for s, e in sh["files"].items():
            scan = scans.setdefault(s, SplitScan(s, 0))
            if scan.scanned >= limit or not e.get("records"):
                continue
            for rec in read_jsonl(Path(root) / e["path"]):
                scan.add(rec, n_samples)
                if scan.scanned >= limit:
                    break
    return scans


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
