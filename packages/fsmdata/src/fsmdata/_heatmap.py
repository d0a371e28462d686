"""A plain-SVG heatmap for report.html (no matplotlib: importing it cost ~1.5 CPU-s per run)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

# viridis at 9 stops (matplotlib's colormap, sampled); cells interpolate linearly between them
_STOPS = np.array(
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


def _colors(m: np.ndarray) -> list[str]:
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    x = (m.ravel() - lo) / (hi - lo) if hi > lo else np.zeros(m.size)
    pos = x * (len(_STOPS) - 1)
    i = np.minimum(pos.astype(int), len(_STOPS) - 2)
    f = (pos - i)[:, None]
    rgb = np.rint(_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def heatmap_svg(
    matrix: np.ndarray, row_labels: Sequence[object], col_labels: Sequence[object], title: str, value_label: str
) -> str:
    """``matrix`` (rows x columns) as an inline SVG grid, one coloured cell per value, each
    cell's value in its tooltip; the colour scale runs from the least to the largest value."""
    m = np.asarray(matrix, dtype=float)
    rows, cols = m.shape
    left, top = 40, 28
    width, height = left + cols * _CELL + 120, top + rows * _CELL + 40
    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="9">',
        f'<text x="{left}" y="14" font-size="12">{esc(title)}</text>',
    ]
    colors = _colors(m)
    for r in range(rows):
        y = top + r * _CELL
        out.append(f'<text x="{left - 4}" y="{y + 11}" text-anchor="end">{esc(str(row_labels[r]))}</text>')
        for c in range(cols):
            v = m[r, c]
            out.append(
                f'<rect x="{left + c * _CELL}" y="{y}" width="{_CELL}" height="{_CELL}" fill="{colors[r * cols + c]}">'
                f"<title>{esc(str(row_labels[r]))}, {esc(str(col_labels[c]))}: {v:.3g}</title></rect>"
            )
    yl = top + rows * _CELL + 12
    for c in range(cols):
        out.append(f'<text x="{left + c * _CELL + _CELL / 2}" y="{yl}" text-anchor="middle">{esc(str(col_labels[c]))}</text>')
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    lx = left + cols * _CELL + 16
    for k in range(len(_STOPS)):
        r, g, b = (int(v) for v in _STOPS[len(_STOPS) - 1 - k])
        out.append(f'<rect x="{lx}" y="{top + k * 10}" width="12" height="10" fill="#{r:02x}{g:02x}{b:02x}"/>')
    out.append(f'<text x="{lx + 16}" y="{top + 8}">{hi:.3g}</text>')
    out.append(f'<text x="{lx + 16}" y="{top + len(_STOPS) * 10}">{lo:.3g}</text>')
    out.append(f'<text x="{lx}" y="{top + len(_STOPS) * 10 + 14}">{esc(value_label)}</text>')
    out.append("</svg>")
    return "".join(out)
