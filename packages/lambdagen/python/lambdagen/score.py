"""Score a model's predictions against a lambdagen dataset: :func:`score_predictions`.

A prediction file is JSONL, one object per line: ``{"id": "<record id>", "prediction": "<term>"}``
with the term in canonical de Bruijn text.  Two tasks:

* ``step``: the prediction is the next term of the record's ``input``.  ``exact`` = the
  normal-order step (the record's ``target``); ``valid`` = *some* beta step of the input
  (any redex contracted), so a model that reduces the wrong redex is told apart from one
  that writes garbage.
* ``nf``: the prediction is the input's normal form.  ``exact`` = alpha-equal to it (with de
  Bruijn indices, alpha-equal terms have one text); records whose trace did not reach a
  normal form are left out (counted as ``no_normal_form``).

Accuracy is broken down by the seed's failure modes: input size band, depth, redex depth
(lambdas above the redex, and ancestors), growth (target larger than input), steps
remaining to the normal form, and the input's lambda prefix (``\\\\\\...``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from datacore import load_manifest, read_jsonl

from . import _core
from .errors import LambdaValueError

TASKS = ("step", "nf")
#: The breakdowns, in the order they are printed.
DIMENSIONS = ("size", "depth", "redex_lambdas", "redex_depth", "growth", "steps_to_nf", "lambda_prefix")


def _steps_band(v: int | None) -> str:
    if v is None:
        return "unknown"
    for hi, label in ((0, "0"), (1, "1"), (3, "2-3"), (7, "4-7"), (15, "8-15"), (31, "16-31"), (63, "32-63")):
        if v <= hi:
            return label
    return "64+"


def _read_predictions(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with path.open("rb") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise LambdaValueError(f"{path}: line {no}: not JSON ({e})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("prediction"), str):
                raise LambdaValueError(f'{path}: line {no}: expected {{"id": "<record id>", "prediction": "<term>"}}')
            if obj["id"] in out:
                raise LambdaValueError(f"{path}: line {no}: id {obj['id']!r} is predicted twice")
            out[obj["id"]] = obj["prediction"]
    if not out:
        raise LambdaValueError(f"{path}: no predictions")
    return out


def _records(root: Path, ids: set[str], split: str | None) -> dict[str, dict[str, Any]]:
    manifest = load_manifest(root)
    found: dict[str, dict[str, Any]] = {}
    for shard in manifest["shards"]:
        for name, f in shard["files"].items():
            if split is not None and name != split:
                continue
            for rec in read_jsonl(root / f["path"]):
                if rec.get("id") in ids:
                    found[rec["id"]] = rec
    return found


def _canonical(text: str) -> str | None:
    try:
        return _core.canonical(text)
    except ValueError:
        return None


def _leading_lambdas(text: str) -> str:
    n = len(text) - len(text.lstrip("\\"))
    return str(n) if n < 3 else "3+"


def score_predictions(
    predictions: str | os.PathLike[str],
    against: str | os.PathLike[str],
    *,
    task: str = "step",
    split: str | None = None,
    max_size: int | None = None,
) -> dict[str, Any]:
    """Score the predictions file against the dataset directory ``against``; returns a dict
    with ``overall`` and ``by`` (dimension -> bucket -> counts and rates)."""
    if task not in TASKS:
        raise LambdaValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    pred_path, root = Path(predictions), Path(against)
    preds = _read_predictions(pred_path)
    recs = _records(root, set(preds), split)
    missing = [i for i in preds if i not in recs]
    if missing:
        where = f" ({split} split)" if split else ""
        raise LambdaValueError(f"{pred_path}: {len(missing)} predicted id(s) are not in {root}{where}, e.g. {missing[0]!r}")
    if max_size is None:
        max_size = int(load_manifest(root).get("spec", {}).get("config", {}).get("max_size", 400))
    zero = {"n": 0, "parsed": 0, "exact": 0, "valid": 0}
    overall = dict(zero)
    skipped = 0
    by: dict[str, dict[str, dict[str, int]]] = {d: defaultdict(lambda: dict(zero)) for d in DIMENSIONS}
    for rid, pred in preds.items():
        rec = recs[rid]
        m = rec["meta"]
        inp = rec["input"]
        guess = _canonical(pred)
        if task == "step":
            if m.get("total_steps", 0) == 0:
                skipped += 1  # a normal start: there is no next step to predict
                continue
            truth = rec["target"]
            exact = guess == truth
            valid = guess is not None and (exact or guess in {t for _, t in _core.beta_reducts(inp)})
        else:
            left = m.get("steps_to_nf")
            if m.get("status") != "normal_form" or left is None:
                skipped += 1
                continue
            truth, _steps, status = _core.normalize(inp, left + 1, max_size)
            if status != "normal_form":  # pragma: no cover - the trace reached it within these caps
                skipped += 1
                continue
            exact = valid = guess == truth
        size_in = m.get("size") or _core.describe(inp)[0]
        size_out = _core.describe(truth)[0]
        pos = m.get("redex")
        if pos is None:
            pos = _core.describe(inp)[3]
        lambdas, ancestors = _core.node_place(inp, pos) if pos is not None else (None, None)
        keys = {
            "size": f"{size_in // 20 * 20:03d}-{size_in // 20 * 20 + 19:03d}",
            "depth": f"{m.get('depth', _core.describe(inp)[1]):02d}",
            "redex_lambdas": "none" if lambdas is None else f"{lambdas:02d}",
            "redex_depth": "none" if ancestors is None else f"{ancestors:02d}",
            "growth": "grows" if size_out > size_in else "same" if size_out == size_in else "shrinks",
            "steps_to_nf": _steps_band(m.get("steps_to_nf")),
            "lambda_prefix": _leading_lambdas(inp),
        }
        for tally in (overall, *(by[d][k] for d, k in keys.items())):
            tally["n"] += 1
            tally["parsed"] += guess is not None
            tally["exact"] += exact
            tally["valid"] += valid

    def rates(t: dict[str, int]) -> dict[str, Any]:
        n = t["n"] or 1
        return {**t, "exact_rate": t["exact"] / n, "valid_rate": t["valid"] / n, "parse_rate": t["parsed"] / n}

    return {
        "task": task,
        "predictions": len(preds),
        "scored": overall["n"],
        "skipped": skipped,
        "skipped_why": "normal starts (no next step)" if task == "step" else "traces without a normal form",
        "overall": rates(overall),
        "by": {d: {k: rates(v) for k, v in sorted(by[d].items())} for d in DIMENSIONS},
    }


def format_table(s: dict[str, Any]) -> str:
    """The score as a plain-text table (one block per breakdown)."""
    o = s["overall"]
    second = "valid beta step" if s["task"] == "step" else "alpha-equal NF"
    lines = [
        f"task {s['task']}: {s['scored']:,} scored ({s['skipped']:,} skipped: {s['skipped_why']}); "
        f"exact {100 * o['exact_rate']:.2f}%  {second} {100 * o['valid_rate']:.2f}%  parsed {100 * o['parse_rate']:.2f}%"
    ]
    for dim, buckets in s["by"].items():
        lines.append(f"\n{dim:<14} {'n':>9} {'exact':>8} {'valid':>8}")
        for k, t in buckets.items():
            lines.append(f"  {k:<12} {t['n']:>9,} {100 * t['exact_rate']:7.2f}% {100 * t['valid_rate']:7.2f}%")
    return "\n".join(lines)


def write_report(s: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write ``score.json`` and ``report.html`` (a chart and a table per breakdown) into ``out``."""
    import html

    from datacore import bar_chart_svg, table_html

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    (root / "score.json").write_bytes(orjson.dumps(s, option=orjson.OPT_INDENT_2))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>lambdagen score</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
        f"<h1>lambdagen score ({html.escape(s['task'])})</h1><pre>{html.escape(format_table(s).splitlines()[0])}</pre>",
    ]
    for dim, buckets in s["by"].items():
        parts.append(f"<h2>by {html.escape(dim)}</h2>")
        parts.append(bar_chart_svg({k: t["exact_rate"] for k, t in buckets.items()}, f"exact rate by {dim}", dim, "exact"))
        rows = [[k, t["n"], f"{t['exact_rate']:.4f}", f"{t['valid_rate']:.4f}"] for k, t in buckets.items()]
        parts.append(table_html([dim, "n", "exact", "valid"], rows))
    parts.append("</body></html>")
    path = root / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
