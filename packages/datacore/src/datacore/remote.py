"""Datasets written to object storage or any fsspec URL (``--out s3://bucket/prefix``).

The run itself happens in a local staging directory (``$DATACORE_STAGING``, default
``~/.cache/datacore/staging/<hash of the URL>``), exactly as for a local ``--out``: same
shards, resume state, checks and bytes.  What reaches the store, and in which order:

* each shard's files as soon as the shard is committed, one object per file (an object
  store shows an object whole or not at all, so a reader never sees half a shard);
* after the run: ``telemetry.json``, ``report.html``, ``README.md``, ``croissant.json``;
* ``dataset.json`` last: its presence means the dataset is complete, as on disk.

Before anything is written the prefix is read: objects that are not of our layout are
refused untouched; a finished dataset there is pulled into staging and treated as a local
one (re-hashed, kept, grown, or refused for another config); shards of an unfinished run
whose staging is gone are refused (``--resume never`` starts over, removing only our files).
Credentials and endpoints come from fsspec's usual places (``AWS_*`` variables,
``FSSPEC_S3_ENDPOINT_URL``) or ``storage_options``.  Needs ``datacore[remote]``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .errors import DatacoreError
from .manifest import MANIFEST, REPORT, TELEMETRY
from .shards import PROGRESS_DIR
from .split import SPLITS

STAGING_ENV = "DATACORE_STAGING"
_SHARD_FILE = re.compile(r"^part-\d{5}\.jsonl(\.gz|\.zst)?$")
# Published after the shards, before the manifest (which is always last).
_FINAL_FILES = (TELEMETRY, REPORT, "README.md", "croissant.json")


def is_remote(out: object) -> bool:
    """True for a URL with a scheme other than ``file`` (``s3://``, ``gs://``, ``memory://``)."""
    return isinstance(out, str) and "://" in out and out.split("://", 1)[0] not in ("", "file")


def staging_dir(url: str) -> Path:
    """The local directory where the run for ``url`` is made (and resumed from)."""
    base = Path(os.environ.get(STAGING_ENV) or Path.home() / ".cache" / "datacore" / "staging")
    return base / hashlib.sha256(url.encode()).hexdigest()[:20]


class RemoteOut:
    """One fsspec URL as a dataset's home: listing, pulling, publishing (see the module docstring)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise DatacoreError(f"{url}: writing to a URL needs fsspec: pip install 'datacore[remote]'") from None
        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ImportError, ValueError) as e:
            raise DatacoreError(f"{self.url}: cannot open this URL ({e})") from None
        self.root = self.root.rstrip("/")
        self.staging = staging_dir(self.url)
        self.published: dict[str, int] = {}  # relative path -> bytes, of what the store holds

    def _key(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError:
            raise
        except Exception as e:  # the store's own errors (botocore, aiohttp, ...) become one line
            raise DatacoreError(f"{self.url}: {what} failed: {type(e).__name__}: {e}") from None

    def listing(self) -> dict[str, int]:
        """Every object under the prefix: relative path -> size."""
        self.fs.invalidate_cache()  # fsspec caches listings per instance, and instances per process
        try:
            found = self._call("listing", lambda: self.fs.find(self.root, detail=True))
        except FileNotFoundError:
            found = {}
        out = {}
        for key, info in found.items():
            rel = key[len(self.root) :].lstrip("/") if key.startswith(self.root) else key
            if rel and info.get("type", "file") == "file":
                out[rel] = int(info.get("size") or 0)
        self.published = dict(out)
        return out

    def foreign(self, listing: dict[str, int], extra: frozenset[str] = frozenset()) -> list[str]:
        """Objects that are not of a datacore dataset's layout (never touched); ``extra``: the
        dataset-level files the prefix's own manifest lists."""
        ours = {MANIFEST, *_FINAL_FILES, *extra}
        bad = []
        for rel in listing:
            parts = rel.split("/")
            if len(parts) == 1 and parts[0] in ours:
                continue
            if len(parts) == 2 and parts[0] in SPLITS and _SHARD_FILE.match(parts[1]):
                continue
            bad.append(rel)
        return sorted(bad)

    def pull(self, rels: list[str], into: Path) -> None:
        """Download ``rels`` into ``into`` (a finished dataset, to be re-hashed and resumed locally)."""
        for rel in rels:
            dest = into / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._call(f"reading {rel}", functools.partial(self.fs.get_file, self._key(rel), str(dest)))

    def put(self, local: Path, rel: str) -> None:
        """Upload one file as one object (whole or not at all)."""
        self._call(f"writing {rel}", lambda: self.fs.put_file(str(local), self._key(rel)))
        self.published[rel] = local.stat().st_size

    def put_shard(self, stage: Path, marker: dict[str, Any]) -> None:
        """Upload a committed shard's files."""
        for entry in marker["files"].values():
            self.put(stage / entry["path"], entry["path"])

    def remove(self, rels: list[str]) -> None:
        """Delete objects of ours (the manifest first, so the prefix never claims to be complete)."""
        for rel in sorted(rels, key=lambda r: r != MANIFEST):
            self._call(f"removing {rel}", functools.partial(self.fs.rm_file, self._key(rel)))
            self.published.pop(rel, None)

    def publish(self, stage: Path, manifest: dict[str, Any]) -> None:
        """Upload what the store lacks of a finished dataset, the manifest last; drop surplus shards."""
        listed = {e["path"]: int(e["bytes"]) for sh in manifest["shards"] for e in sh["files"].values()}
        for rel, size in listed.items():
            if self.published.get(rel) != size:
                self.put(stage / rel, rel)
        for name in [*(e["path"] for e in manifest.get("extra_files", [])), *_FINAL_FILES]:
            if (stage / name).exists():
                self.put(stage / name, name)
        surplus = [r for r in self.published if r not in listed and "/" in r and not self.foreign({r: 0})]
        self.remove(surplus)
        self.put(stage / MANIFEST, MANIFEST)

    def read_manifest(self) -> dict[str, Any]:
        raw = self._call("reading dataset.json", lambda: self.fs.cat_file(self._key(MANIFEST)))
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DatacoreError(f"{self.url}/{MANIFEST}: corrupt manifest ({e})") from None


def prepare_remote(url: str, storage_options: dict[str, Any] | None, mode: str) -> RemoteOut:
    """Read the prefix and make the staging directory agree with it, before anything is written."""
    target = RemoteOut(url, storage_options)
    listing = target.listing()
    extra: frozenset[str] = frozenset()
    if MANIFEST in listing:
        m = target.read_manifest()
        extra = frozenset(e["path"] for e in m.get("extra_files", []) if isinstance(e, dict) and isinstance(e.get("path"), str))
    foreign = target.foreign(listing, extra)
    if foreign:
        raise DatacoreError(
            f"{target.url}: not empty and not a dataset of ours (holds {', '.join(foreign[:3])}); "
            "choose an empty or new --out (nothing was changed)"
        )
    stage = target.staging
    staged_run = (stage / PROGRESS_DIR / "run.json").exists() or (stage / MANIFEST).exists()
    if mode == "never":
        target.remove(list(listing))
        shutil.rmtree(stage, ignore_errors=True)
    elif MANIFEST in listing and not (stage / MANIFEST).exists():
        # A finished dataset: pull it, so the local rules (re-hash, keep, grow, refuse) apply.
        shutil.rmtree(stage, ignore_errors=True)
        target.pull(sorted(listing), stage)
    elif listing and not staged_run:
        raise DatacoreError(
            f"{target.url}: holds shards of an unfinished run whose local state ({stage}) is gone; "
            "use --resume never to start over (only the dataset's own objects are removed)"
        )
    return target
