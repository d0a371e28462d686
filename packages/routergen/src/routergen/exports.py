"""CSV and plain-text exports of a run, beside the datacore dataset files.

``OUT/exports/samples.csv``: one row per stored sample in generation order (``meta.index``):
``id``, the output fields, then the lineage columns (``scores`` as JSON).
``OUT/exports/samples.txt``: the text field of each sample, one per line (line breaks inside a
sample become spaces).  Both are written atomically and are deterministic.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from datacore import read_jsonl

from .spec import Recipe

LINEAGE = ("index", "iteration", "arm", "exploration_rate", "generator", "model", "prompt_hash", "recipe_hash")


def _records(out: Path, shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for sh in shards:
        for entry in sh["files"].values():
            p = out / entry["path"]
            if p.exists():
                recs.extend(read_jsonl(p))
    recs.sort(key=lambda r: r["meta"]["index"])
    return recs


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def write_exports(out: Path, recipe: Recipe, manifest: dict[str, Any] | None, builder: Any = None) -> Path:
    """Write the CSV and text exports from the stored shards; return the exports folder."""
    out = Path(out)
    if manifest is not None:
        shards = manifest["shards"]
    else:
        shards = [builder.done[i] for i in sorted(builder.done)]
    recs = _records(out, shards)
    fields = list((recipe.schema or {}).get("properties", {}) or {})
    extra = sorted({k for r in recs for k in r if k not in ("id", "meta") and k not in fields})
    cols = ["id", *fields, *extra]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols + list(LINEAGE) + ["scores"])
    for r in recs:
        m = r["meta"]
        w.writerow([_cell(r.get(c)) for c in cols] + [_cell(m.get(k)) for k in LINEAGE] + [_cell(m.get("scores"))])
    d = out / "exports"
    _atomic_write(d / "samples.csv", buf.getvalue())
    tf = recipe.text_field
    _atomic_write(d / "samples.txt", "".join(" ".join(str(r.get(tf, "")).splitlines()) + "\n" for r in recs))
    return d
