"""The dataset manifest (``dataset.json``) and integrity checks against it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import orjson

from .errors import JsonlError, ManifestError

MANIFEST = "dataset.json"
TELEMETRY = "telemetry.json"
REPORT = "report.html"
FORMAT = "datacore-dataset/1"
DIGEST_FIELD = "manifest_sha256"
_SPLIT_DIRS = ("train", "val", "test")
_ENTRY_FIELDS = (("path", str), ("records", int), ("bytes", int), ("sha256", str))


def manifest_digest(manifest: dict[str, Any]) -> str:
    """Return the sha256 (hex) of a manifest's canonical JSON, without its own ``manifest_sha256``.

    Canonical: keys sorted, compact, as orjson writes them.  The writer records it as
    ``manifest["manifest_sha256"] = manifest_digest(manifest)`` just before writing
    ``dataset.json``; :func:`verify_dataset` recomputes it from the loaded file, so any edit of the
    manifest (a record count, a hash, a path) is caught even when the edit is consistent.
    """
    body = {k: v for k, v in manifest.items() if k != DIGEST_FIELD}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()


def dataset_path(out: str | os.PathLike[str], rel: object) -> Path:
    """Resolve a path named by a manifest inside the dataset ``out``, or raise :class:`ManifestError`.

    Refused: anything but a non-empty relative POSIX path, absolute paths (POSIX or Windows,
    drive letters), ``..`` parts, backslashes, and a path that leaves ``out`` through a symlink.
    A reader must never open a file the dataset's own manifest could point anywhere.
    """
    where = Path(out) / MANIFEST
    if not isinstance(rel, str) or not rel:
        raise ManifestError(f"{where}: file path {rel!r} is not a relative path")
    pp = PurePosixPath(rel)
    win = PureWindowsPath(rel)
    if pp.is_absolute() or win.is_absolute() or win.drive or "\\" in rel or ".." in pp.parts or "\x00" in rel:
        raise ManifestError(f"{where}: file path {rel!r} points outside the dataset")
    p = Path(out) / pp
    try:
        inside = p.resolve().is_relative_to(Path(out).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise ManifestError(f"{where}: file path {rel!r} leads outside the dataset (symlink)")
    return p


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


def _entry_problems(manifest: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The file entries of a manifest, and what is wrong with its structure (one line each)."""
    files: list[dict[str, Any]] = []
    problems: list[str] = []
    shards = manifest.get("shards") if isinstance(manifest, dict) else None
    if not isinstance(shards, list):
        return files, [f"{MANIFEST}: 'shards' is not a list"]
    for i, shard in enumerate(shards):
        name = f"shard {shard.get('index', i) if isinstance(shard, dict) else i}"
        if not isinstance(shard, dict) or not isinstance(shard.get("files"), dict):
            problems.append(f"{MANIFEST}: {name} has no 'files' table")
            continue
        for split, entry in shard["files"].items():
            if not isinstance(entry, dict):
                problems.append(f"{MANIFEST}: {name}, split '{split}': file entry is not an object")
                continue
            bad = [f for f, tp in _ENTRY_FIELDS if not isinstance(entry.get(f), tp) or isinstance(entry.get(f), bool)]
            if bad:
                problems.append(
                    f"{MANIFEST}: {name}, split '{split}': file entry lacks a valid {', '.join(repr(b) for b in bad)}"
                )
                continue
            files.append({"split": split, **entry, "shard": shard.get("index", i)})
    return files, problems


def dataset_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every file entry (``path``, ``split``, ``records``, ``bytes``, ``sha256``) of a manifest.

    Raises :class:`ManifestError` (one line) for an entry that lacks a field; use
    :func:`dataset_file_paths` to also resolve the paths safely inside the dataset.
    """
    files, problems = _entry_problems(manifest)
    if problems:
        raise ManifestError(problems[0] + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""))
    return files


def dataset_file_paths(out: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], Path]]:
    """``(entry, path)`` for every file of the dataset ``out``, each path checked to lie inside it.

    Every reader of a dataset directory (stats, export, report, diff) goes through this, so a
    manifest cannot make datacore read outside the dataset.
    """
    m = load_manifest(out) if manifest is None else manifest
    return [(e, dataset_path(out, e["path"])) for e in dataset_files(m)]


def count_lines(path: str | os.PathLike[str]) -> int:
    """Number of lines (records, as datacore writes them: no blank lines) in a (possibly compressed) JSONL file."""
    from .jsonl import compression_of, open_binary

    n = 0
    last = b""
    try:
        with open_binary(path) as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
                last = chunk[-1:]
    except Exception as e:  # OSError, EOFError, zlib.error, zstd errors: one line naming the file
        raise JsonlError(path, None, f"corrupt or truncated {compression_of(path) or 'file'} stream: {e}") from None
    return n + (last not in (b"\n", b""))


def verify_dataset(out: str | os.PathLike[str]) -> list[str]:
    """Check a dataset directory against its manifest; return the problems found (empty if none).

    Strict: every listed file must lie inside the dataset, exist, have the recorded size,
    sha256 and record count (lines counted); shard and split totals must add up; no file may
    sit in a split folder without being listed; and where the manifest records its own hash
    (``manifest_sha256``) it must match.  A malformed manifest is reported, never a traceback.
    """
    m = load_manifest(out)
    out = Path(out)
    problems: list[str] = []
    recorded = m.get(DIGEST_FIELD)
    if recorded is not None and recorded != manifest_digest(m):
        problems.append(f"{MANIFEST}: manifest_sha256 does not match the manifest (it was edited)")
    files, problems_structure = _entry_problems(m)
    problems += problems_structure
    listed: set[Path] = set()
    per_split: dict[str, int] = {}
    per_shard: dict[Any, int] = {}
    for entry in files:
        rel = entry["path"]
        try:
            p = dataset_path(out, rel)
        except ManifestError:
            problems.append(f"{rel}: path points outside the dataset")
            continue
        if p.resolve() in listed:
            problems.append(f"{rel}: listed twice")
            continue
        listed.add(p.resolve())
        per_split[entry["split"]] = per_split.get(entry["split"], 0) + entry["records"]
        per_shard[entry["shard"]] = per_shard.get(entry["shard"], 0) + entry["records"]
        if not p.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = p.stat().st_size
        if size != entry["bytes"]:
            problems.append(f"{rel}: {size} bytes, manifest says {entry['bytes']}")
        elif sha256_file(p) != entry["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
        else:
            try:
                n = count_lines(p)
            except JsonlError as e:
                problems.append(f"{rel}: {e.reason}")
                continue
            if n != entry["records"]:
                problems.append(f"{rel}: {n} records, manifest says {entry['records']}")
    if not problems_structure:
        for shard in m["shards"]:
            idx = shard.get("index")
            if "count" in shard and shard["count"] != per_shard.get(idx, 0):
                problems.append(f"{MANIFEST}: shard {idx} count {shard['count']} != {per_shard.get(idx, 0)} records in its files")
        splits = m.get("splits")
        if isinstance(splits, dict):
            for s in sorted(set(splits) | set(per_split)):
                if splits.get(s, 0) != per_split.get(s, 0):
                    problems.append(f"{MANIFEST}: splits.{s} is {splits.get(s, 0)}, its files hold {per_split.get(s, 0)}")
        if "records" in m and m["records"] != sum(per_split.values()):
            problems.append(f"{MANIFEST}: records is {m['records']}, the files hold {sum(per_split.values())}")
    extras = m.get("extra_files", [])
    for extra in extras if isinstance(extras, list) else [None]:
        if not isinstance(extra, dict) or not isinstance(extra.get("path"), str) or not {"bytes", "sha256"} <= set(extra):
            problems.append(f"{MANIFEST}: a malformed extra_files entry: {str(extra)[:80]}")
            continue
        rel = extra["path"]
        if "/" in rel or "\\" in rel or rel in ("", ".", ".."):
            problems.append(f"{rel}: an extra file must sit in the dataset's top folder")
            continue
        p = out / rel
        if not p.is_file() or p.is_symlink():
            problems.append(f"{rel}: missing")
        elif p.stat().st_size != extra["bytes"]:
            problems.append(f"{rel}: {p.stat().st_size} bytes, manifest says {extra['bytes']}")
        elif sha256_file(p) != extra["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
    for split in _SPLIT_DIRS:
        d = out / split
        if d.is_dir():
            for p in sorted(d.rglob("*")):
                if (p.is_file() or p.is_symlink()) and p.resolve() not in listed:
                    problems.append(f"{p.relative_to(out).as_posix()}: not listed in the manifest")
    return problems
