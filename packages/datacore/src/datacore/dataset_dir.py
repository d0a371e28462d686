"""The state of a dataset directory: open or resume a run, commit shards, finalize.

Layout of a dataset directory::

    OUT/dataset.json                     manifest (written last: its presence means complete)
    OUT/{train,val,test}/part-NNNNN.jsonl[.gz|.zst]
    OUT/telemetry.json                   merged telemetry
    OUT/report.html                      the same as charts
    OUT/.datacore/                       progress while a run is unfinished (removed at the end)

Each shard's files are written under temporary names and renamed when complete; then a
progress marker ``.datacore/shard-NNNNN.json`` is written (atomically) with the shard's
counts, file sizes and sha256, and telemetry.  A run killed at any moment and started again
re-hashes what it keeps, redoes only the shards that have no valid marker, and since a
shard's content depends only on its seed, ends byte-identical to a run never interrupted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigMismatchError, DatacoreError, ManifestError
from .generator import ReportSection
from .manifest import DIGEST_FIELD, FORMAT, MANIFEST, REPORT, TELEMETRY, dump_json, manifest_digest, sha256_file
from .shards import COMPRESSIONS, PROGRESS_DIR, commit_shard, shard_paths, write_records
from .split import DEFAULT_RATIOS, SPLITS, SplitKey, Splitter, thresholds
from .strata import STRATA, Delivery, Target, check_delivery
from .telemetry import Telemetry

RESUME_MODES = ("if_possible", "always", "never")
# A generator's dataset-level file: a plain name in the dataset's top folder.
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Files a dataset directory of ours may hold at its top level (anything else is the user's).
_OURS = {MANIFEST, TELEMETRY, REPORT, "README.md", "croissant.json", PROGRESS_DIR, *SPLITS}
# The spec keys whose difference matters most to a user, shown first in a refusal.
_FIRST = ("generator", "version", "code_digest", "datacore_version", "seed", "n", "shard_size", "config")


def _resume_mode(resume: bool | str) -> str:
    if resume is True:
        return "if_possible"
    if resume is False:
        return "never"
    if resume not in RESUME_MODES:
        raise DatacoreError(f"resume must be one of {', '.join(RESUME_MODES)}; got {resume!r}")
    return resume


class DatasetBuilder:
    """Writes a dataset directory shard by shard, with resume.

    :func:`~datacore.build_dataset` drives it for parallel generators; a sequential, stateful
    pipeline (a bandit loop) can drive it directly: check :attr:`done`, call
    :meth:`write_shard` per unit of work (its ``extra`` JSON state is kept in the shard's
    marker and handed back on resume), then :meth:`finalize`.

    ``resume``: ``"if_possible"`` (default; ``True``) finishes an unfinished run of the same
    identity and refuses a different one; ``"always"`` also refuses when there is nothing to
    resume; ``"never"`` (``False``) discards an earlier run of ours (only our own files).
    The identity is the generator, its version and a digest of its code, datacore's version,
    the full config, seed, n, shard size, split ratios and compression.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        generator_name: str,
        version: str,
        config: dict[str, Any],
        seed: int,
        *,
        split_ratios: Sequence[float] = DEFAULT_RATIOS,
        split_salt: str = "",
        compress: str | None = None,
        resume: bool | str = True,
        n: int | None = None,
        shard_size: int | None = None,
        generator_ref: str | None = None,
        code_digest: str | None = None,
        log: Callable[[str], None] | None = None,
        growable: bool = False,
    ) -> None:
        if compress not in COMPRESSIONS:
            raise DatacoreError(f"compress must be one of none, gz, zst; got {compress!r}")
        try:
            thresholds(split_ratios)
        except ValueError as e:
            raise DatacoreError(str(e)) from None
        mode = _resume_mode(resume)
        self.out = Path(out).absolute()
        self.compress = compress
        self.splitter = Splitter(split_ratios, split_salt)
        self._log = log or (lambda msg: print(msg, file=sys.stderr))
        try:
            cfg = orjson.loads(orjson.dumps(config, option=orjson.OPT_SERIALIZE_NUMPY))
        except TypeError as e:
            raise DatacoreError(f"config is not JSON-able: {e}") from None
        self.spec: dict[str, Any] = {
            "generator": generator_name,
            "version": version,
            "code_digest": code_digest,
            "datacore_version": _datacore_version(),
            "config": cfg,
            "seed": seed,
            "n": n,
            "shard_size": shard_size,
            "split_ratios": [float(r) for r in split_ratios],
            "split_salt": split_salt,
            "compress": compress,
        }
        self.generator_ref = generator_ref
        #: a shard's content depends only on its task, not on n: a finished dataset may grow (or shrink)
        self.growable = growable
        self.progress = self.out / PROGRESS_DIR
        self.done: dict[int, dict[str, Any]] = {}
        self.complete = False
        self.created = not self.out.exists()
        self._open(mode)

    # -- set-up and resume ---------------------------------------------------------------
    def _open(self, mode: str) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise DatacoreError(f"{self.out}: exists and is not a directory")
        manifest_path = self.out / MANIFEST
        run_path = self.progress / "run.json"
        ours = manifest_path.exists() or run_path.exists()
        if self.out.is_dir() and not ours:
            foreign = sorted(p.name for p in self.out.iterdir() if p.name not in _OURS)
            if foreign or any((self.out / s).is_dir() and any((self.out / s).iterdir()) for s in SPLITS):
                shown = ", ".join(foreign[:3]) or "split folders with files"
                raise DatacoreError(
                    f"{self.out}: not empty and not a dataset run of ours (holds {shown}); "
                    "choose an empty or new --out (nothing was changed)"
                )
        if mode == "always" and not ours:
            raise DatacoreError(f"{self.out}: --resume always, but there is no run to resume here")
        if mode == "never":
            self._clear()
        elif manifest_path.exists():
            try:
                old = orjson.loads(manifest_path.read_bytes())
            except orjson.JSONDecodeError as e:
                raise ManifestError(f"{manifest_path}: corrupt manifest ({e}); use --resume never to start over") from None
            if self.growable and self._only_n_differs(old.get("spec", {})):
                self._verify_complete(old)
                self._reopen_to_resize(old)
                return
            self._check_same(old.get("spec", {}), manifest_path)
            self._verify_complete(old)
            # A kill between writing the manifest and removing the progress folder leaves it behind.
            shutil.rmtree(self.progress, ignore_errors=True)
            self.complete = True
            self.manifest = old
            return
        elif run_path.exists():
            try:
                old_spec = orjson.loads(run_path.read_bytes())
            except orjson.JSONDecodeError:
                old_spec = None  # killed while writing run.json: nothing of value was written yet
            if old_spec is not None:
                self._check_same(old_spec, run_path)
                self._load_markers()
                if self.growable:
                    self._drop_unkept_shards()  # a resize killed before it removed the old shards
        self.progress.mkdir(parents=True, exist_ok=True)
        dump_json(run_path, self.spec)

    def _only_n_differs(self, old: dict[str, Any]) -> bool:
        diffs = _diff(old, self.spec)
        return bool(diffs) and all(d.startswith("n: ") for d in diffs)

    def _reopen_to_resize(self, old: dict[str, Any]) -> None:
        """Turn a finished dataset of another ``n`` back into an unfinished run of this one.

        Kept: every shard whose task is unchanged (same index and record count; the seed is a
        function of the run seed and the index), with the telemetry its manifest entry holds.
        Made again: the old last shard if it was partial, and every new shard.  Crash-safe:
        the run state is written before the manifest goes, and a kill at any point resumes.
        """
        n, size = self.spec["n"], self.spec["shard_size"]
        total = num_shards(n, size) if n is not None and size else 0
        old_shards = old.get("shards", [])
        keep = [
            sh
            for sh in old_shards
            if "telemetry" in sh and sh["index"] < total and sh["count"] == min(size, n - sh["index"] * size)
        ]
        self.progress.mkdir(parents=True, exist_ok=True)
        dump_json(self.progress / "run.json", self.spec)
        for sh in keep:
            marker = {
                "index": sh["index"],
                "seed": sh["seed"],
                "count": sh["count"],
                "expected": sh["count"],
                "seconds": None,
                "files": sh["files"],
                "telemetry": sh["telemetry"],
                "extra": None,
            }
            dump_json(self.progress / f"shard-{sh['index']:05d}.json", marker)
            self.done[sh["index"]] = marker
        self._remove_extra_files()  # made again at the end, from the new run's telemetry
        (self.out / MANIFEST).unlink()
        for name in (TELEMETRY, REPORT, "README.md", "croissant.json"):
            (self.out / name).unlink(missing_ok=True)
        self._drop_unkept_shards()
        self._log(
            f"{self.out}: n {old.get('spec', {}).get('n')} -> {n}: keeping {len(keep)} of {len(old_shards)} "
            f"finished shards, making {total - len(keep)}"
        )

    def _drop_unkept_shards(self) -> None:
        """Remove shard files of ours that no kept marker lists (a resized run's leftovers)."""
        listed = {e["path"] for m in self.done.values() for e in m["files"].values()}
        for split in SPLITS:
            d = self.out / split
            if d.is_dir():
                for p in d.glob("part-*.jsonl*"):
                    if p.relative_to(self.out).as_posix() not in listed and not p.name.endswith(".tmp"):
                        p.unlink()

    def _check_same(self, old: dict[str, Any], where: Path) -> None:
        diffs = _diff(old, self.spec)
        if diffs:
            diffs.sort(key=lambda d: next((i for i, k in enumerate(_FIRST) if d.startswith(k)), len(_FIRST)))
            shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
            raise ConfigMismatchError(
                f"{self.out} holds a run with a different config ({shown}); use another --out, or --resume never to discard it"
            )

    def _verify_complete(self, manifest: dict[str, Any]) -> None:
        """A finished dataset is kept only if every file still has its recorded size and sha256."""
        entries = [e for shard in manifest.get("shards", []) for e in shard.get("files", {}).values()]
        for entry in entries + list(manifest.get("extra_files", [])):
            bad = _file_problem(self.out, entry)
            if bad:
                raise ManifestError(
                    f"{self.out / entry.get('path', '?')}: {bad}; the finished dataset is damaged "
                    "(datacore verify lists every problem; --resume never rebuilds it)"
                )

    def _load_markers(self) -> None:
        for p in sorted(self.progress.glob("shard-*.json")):
            try:
                marker = orjson.loads(p.read_bytes())
            except orjson.JSONDecodeError:
                continue  # torn marker: redo that shard
            problems = [b for e in marker.get("files", {}).values() if (b := _file_problem(self.out, e))]
            if problems:
                # Never trust a kept shard blindly: a changed byte means the shard is made again.
                self._log(f"{p.name}: {problems[0]}; shard {marker.get('index')} will be made again")
                p.unlink(missing_ok=True)
                continue
            self.done[int(marker["index"])] = marker

    def _clear(self) -> None:
        """Remove what an earlier run of ours left in OUT (only our own files)."""
        self._remove_extra_files()
        for name in (MANIFEST, TELEMETRY, REPORT, "README.md", "croissant.json"):
            (self.out / name).unlink(missing_ok=True)
        for split in SPLITS:
            d = self.out / split
            if d.is_dir():
                for p in [*d.glob("part-*.jsonl*"), *d.glob("part-*.lineidx")]:  # shards and the reader's line index
                    p.unlink()
        shutil.rmtree(self.progress, ignore_errors=True)

    def _remove_extra_files(self) -> None:
        """Remove the dataset-level files a finished manifest of ours lists (only those)."""
        try:
            old = orjson.loads((self.out / MANIFEST).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        for entry in old.get("extra_files", []) if isinstance(old, dict) else []:
            name = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(name, str) and _EXTRA_NAME.match(name) and name not in _OURS:
                (self.out / name).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove everything this run (and earlier attempts of the same run) wrote: a failed run leaves nothing."""
        self._clear()
        for split in SPLITS:
            d = self.out / split
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        if self.created and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()

    def abandon(self) -> None:
        """After a failed run: keep finished shards for a resume, or leave nothing if none finished."""
        if not self.done and not self.complete:
            self.discard()

    # -- shards ------------------------------------------------------------------------------
    def shard_paths(self, index: int) -> dict[str, Path]:
        """Final paths of shard ``index``'s files, one per split."""
        return shard_paths(self.out, index, self.compress)

    def write_shard(
        self,
        index: int,
        records: Iterable[dict[str, Any]],
        split_key: Callable[[dict[str, Any]], SplitKey],
        telemetry: Telemetry,
        extra: Any = None,
        seed: int | None = None,
        split_of: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        """Write one shard's records (split by ``split_of``/``split_key``), then its progress marker."""
        marker = write_records(self.shard_paths(index), records, split_key, self.splitter, split_of)
        return self.commit(index, marker, telemetry, extra, seed)

    def commit(
        self, index: int, files: dict[str, dict[str, Any]], telemetry: Telemetry, extra: Any = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Record a shard whose files (``{split: {"path", "records"}}``) are already in place."""
        marker = commit_shard(self.out, index, seed, files, telemetry, extra)
        self.done[index] = marker
        return marker

    def add_marker(self, marker: dict[str, Any]) -> None:
        """Accept a marker written by a worker process."""
        self.done[int(marker["index"])] = marker

    def merged_telemetry(self) -> Telemetry:
        """The telemetry of every finished shard, merged in index order."""
        return Telemetry.merged([Telemetry.from_dict(self.done[i]["telemetry"]) for i in sorted(self.done)])

    # -- the end -----------------------------------------------------------------------------
    def _write_extra_files(self, files: dict[str, bytes]) -> list[dict[str, Any]]:
        """Write a generator's dataset-level files (atomically); return their manifest entries."""
        entries = []
        for name in sorted(files):
            data = files[name]
            if not isinstance(name, str) or not _EXTRA_NAME.match(name) or name in _OURS:
                raise DatacoreError(f"dataset file name {name!r} is not allowed (a plain file name, not one of datacore's)")
            if not isinstance(data, (bytes, bytearray)):
                raise DatacoreError(f"dataset file {name}: content must be bytes, got {type(data).__name__}")
            tmp = self.out / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.out / name)
            entries.append({"path": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        return entries

    def finalize(
        self,
        report_sections: Sequence[ReportSection] | Callable[[Telemetry], Sequence[ReportSection]] = (),
        *,
        targets: Sequence[Target] = (),
        allow_shortfall: bool = False,
        extra_manifest: dict[str, Any] | None = None,
        environment: dict[str, Any] | None = None,
        files: Callable[[Telemetry], dict[str, bytes]] | None = None,
    ) -> dict[str, Any]:
        """Check requested vs delivered, then write telemetry.json, report.html and (last) dataset.json.

        A miss of ``n`` or of a target stratum raises :class:`~datacore.ShortfallError`
        and removes the run's files, unless ``allow_shortfall``: then the verdict is recorded
        in the manifest (``delivery``) and shown in the report.
        """
        if self.complete:
            return self.manifest
        from .card import write_card
        from .report import render_report

        indices = sorted(self.done)
        if self.spec["n"] is not None and self.spec["shard_size"]:
            expected = list(range(num_shards(self.spec["n"], self.spec["shard_size"])))
            missing = sorted(set(expected) - set(indices))
            if missing:
                raise DatacoreError(f"cannot finalize {self.out}: shards {missing[:10]} are not done")
        telemetry = self.merged_telemetry()
        splits = dict.fromkeys(SPLITS, 0)
        shards = []
        for i in indices:
            m = self.done[i]
            for s, e in m["files"].items():
                splits[s] += e["records"]
            entry = {k: m[k] for k in ("index", "seed", "count", "files")}
            if self.growable:  # what a later run with another n needs to keep this shard
                entry["telemetry"] = m["telemetry"]
            shards.append(entry)
        total = sum(splits.values())
        requested = self.spec["n"] if self.spec["n"] is not None else total
        try:
            delivery: Delivery = check_delivery(
                requested, total, targets, telemetry.histograms.get(STRATA, {}), allow_shortfall=allow_shortfall
            )
        except DatacoreError:
            self.discard()
            raise
        telemetry.count("records", total)
        for s in SPLITS:
            telemetry.count(f"records.{s}", splits[s])
        extra_files = self._write_extra_files(files(telemetry) if files is not None else {})
        manifest = {
            "format": FORMAT,
            "generator": self.spec["generator"],
            "generator_ref": self.generator_ref,
            "version": self.spec["version"],
            "datacore_version": _datacore_version(),
            "records": total,
            "splits": splits,
            "delivery": delivery.to_dict(),
            "spec": self.spec,
            "shards": shards,
            **({"extra_files": extra_files} if extra_files else {}),
            **(extra_manifest or {}),
        }
        sections = report_sections(telemetry) if callable(report_sections) else report_sections
        dump_json(self.out / TELEMETRY, telemetry.to_dict())
        # Timings vary from run to run, so they are shown in the report but kept out of the manifest.
        # So do the executor and worker count, which must not change a dataset's bytes either.
        timed = {
            **manifest,
            "shards": [s | _timing(self.done[s["index"]]) for s in shards],
            "environment": dict(environment or {}),
        }
        from .report import scan_dataset

        scanned = scan_dataset(self.out, manifest, with_overall=True)  # once, for the report and the card
        html = render_report(timed, telemetry, list(sections), scanned=scanned)
        tmp = self.out / (REPORT + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, self.out / REPORT)
        write_card(self.out, manifest, telemetry, scans=scanned[0])  # README.md + croissant.json; the manifest stays last
        manifest[DIGEST_FIELD] = manifest_digest(manifest)  # verify catches any later edit of the manifest
        dump_json(self.out / MANIFEST, manifest)
        shutil.rmtree(self.progress, ignore_errors=True)
        self.manifest = manifest
        self.complete = True
        return manifest


def _timing(marker: dict[str, Any]) -> dict[str, Any]:
    return {"seconds": marker["seconds"]} if marker.get("seconds") is not None else {}


def _file_problem(out: Path, entry: dict[str, Any]) -> str | None:
    """Why a recorded shard file cannot be kept (None when its size and sha256 match)."""
    rel = entry.get("path")
    if not isinstance(rel, str) or not {"bytes", "sha256"} <= set(entry):
        return "incomplete file entry"
    p = (out / rel).resolve()
    if not p.is_relative_to(out.resolve()):
        return "path outside the dataset"
    if not p.is_file():
        return "missing"
    if p.stat().st_size != entry["bytes"]:
        return f"{p.stat().st_size} bytes, {entry['bytes']} recorded"
    if sha256_file(p) != entry["sha256"]:
        return "sha256 differs from the one recorded"
    return None


def _datacore_version() -> str:
    from . import __version__

    return __version__


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(k, "<unset>"), new.get(k, "<unset>"), f"{path}.{k}" if path else str(k))
        return out
    return [] if old == new else [f"{path}: {old!r} != {new!r}"]


def num_shards(n: int, shard_size: int) -> int:
    """Number of shards of a run of ``n`` records in shards of ``shard_size``."""
    return (n + shard_size - 1) // shard_size


def code_digest(generator: object) -> str | None:
    """sha256 over the source files of the generator's top-level package (None if not found).

    Part of the resume identity: editing a generator's code without bumping its version
    must not resume into a mix of old and new shards.
    """
    top = type(generator).__module__.split(".")[0]
    mod = sys.modules.get(top)
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    root = Path(path).parent if Path(path).name == "__init__.py" else Path(path)
    files = (
        [root]
        if root.is_file()
        else sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix in (".py", ".pyi", ".so", ".pyd", ".json", ".yaml", ".yml")
            and "__pycache__" not in p.parts
        )
    )
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root.parent).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
