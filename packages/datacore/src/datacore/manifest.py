"""The dataset manifest (``dataset.json``) and integrity checks against it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from .errors import ManifestError

MANIFEST = "dataset.json"
TELEMETRY = "telemetry.json"
REPORT = "report.html"
FORMAT = "datacore-dataset/1"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def dump_json(path: Path, obj: Any) -> None:
    """Write indented JSON atomically (temporary name, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    os.replace(tmp, path)


def load_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and sanity-check ``OUT/dataset.json``; raise :class:`ManifestError` naming the problem."""
    path = Path(out) / MANIFEST
    if not Path(out).is_dir():
        raise ManifestError(f"{out}: not a directory")
    if not path.exists():
        raise ManifestError(f"{path}: no manifest (not a datacore dataset directory, or the run is unfinished)")
    try:
        m = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ManifestError(f"{path}: corrupt manifest: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a {FORMAT} manifest")
    for field in ("generator", "shards", "splits"):
        if field not in m:
            raise ManifestError(f"{path}: manifest lacks field '{field}'")
    return m


def dataset_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every file entry (``path``, ``split``, ``records``, ``bytes``, ``sha256``) of a manifest."""
    files = []
    for shard in manifest["shards"]:
        for split, entry in shard["files"].items():
            files.append({"split": split, **entry})
    return files


def verify_dataset(out: str | os.PathLike[str]) -> list[str]:
    """Re-hash every file of a dataset against its manifest; return the problems found (empty if none)."""
    m = load_manifest(out)
    problems = []
    for entry in dataset_files(m):
        p = Path(out) / entry["path"]
        if not p.exists():
            problems.append(f"{entry['path']}: missing")
            continue
        size = p.stat().st_size
        if size != entry["bytes"]:
            problems.append(f"{entry['path']}: {size} bytes, manifest says {entry['bytes']}")
        elif sha256_file(p) != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from the manifest")
    return problems
