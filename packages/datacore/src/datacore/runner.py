"""Sharded dataset runs: execution, writing, resume and the finished dataset directory.

Layout of a dataset directory::

    OUT/dataset.json                     manifest (written last: its presence means complete)
    OUT/{train,val,test}/part-NNNNN.jsonl[.gz|.zst]
    OUT/telemetry.json                   merged telemetry
    OUT/report.html                      the same as charts
    OUT/.datacore/                       progress while a run is unfinished (removed at the end)

Each shard's files are written under temporary names and renamed when complete; then a
progress marker ``.datacore/shard-NNNNN.json`` is written (atomically) with the shard's
counts, file hashes and telemetry.  A run killed at any moment and started again redoes
only the shards that have no marker, and since a shard's content depends only on its
seed, the result is byte-identical to a run that was never interrupted.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import attrs
import orjson
import xxhash
from tqdm import tqdm

from .errors import ConfigMismatchError, DatacoreError, ManifestError
from .generator import ReportSection, ShardTask, generator_ref, has_file_writer, report_sections_of
from .jsonl import JsonlWriter
from .manifest import FORMAT, MANIFEST, REPORT, TELEMETRY, dump_json, sha256_file
from .seeds import shard_seed
from .split import DEFAULT_RATIOS, SPLITS, SplitKey, Splitter, thresholds
from .telemetry import Telemetry

PROGRESS_DIR = ".datacore"
EXECUTORS = ("process", "ray", "inline")
COMPRESSIONS = (None, "gz", "zst")


def content_id(record: dict[str, Any]) -> str:
    """Content hash of a record: xxh3-128 hex of its canonical (key-sorted) JSON."""
    return xxhash.xxh3_128_hexdigest(orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))


def _ext(compress: str | None) -> str:
    return ".jsonl" + ("" if compress is None else f".{compress}")


@attrs.frozen
class BuildResult:
    """What :func:`build_dataset` returns: the manifest, merged telemetry and timing."""

    out: Path
    manifest: dict[str, Any]
    telemetry: Telemetry
    records: int
    seconds: float
    shards_run: int


class DatasetBuilder:
    """Writes a dataset directory shard by shard, with resume.

    :func:`build_dataset` drives it for parallel generators; a sequential, stateful pipeline
    (a bandit loop) can drive it directly: check :attr:`done`, call :meth:`write_shard` per
    unit of work (its ``extra`` JSON state is kept in the shard's marker and handed back on
    resume), then :meth:`finalize`.
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
        resume: bool = True,
        n: int | None = None,
        shard_size: int | None = None,
        generator_ref: str | None = None,
    ) -> None:
        if compress not in COMPRESSIONS:
            raise DatacoreError(f"compress must be one of none, gz, zst; got {compress!r}")
        try:
            thresholds(split_ratios)
        except ValueError as e:
            raise DatacoreError(str(e)) from None
        self.out = Path(out)
        self.compress = compress
        self.splitter = Splitter(split_ratios, split_salt)
        self.spec: dict[str, Any] = {
            "generator": generator_name,
            "version": version,
            "config": orjson.loads(orjson.dumps(config, option=orjson.OPT_SERIALIZE_NUMPY)),
            "seed": seed,
            "n": n,
            "shard_size": shard_size,
            "split_ratios": [float(r) for r in split_ratios],
            "split_salt": split_salt,
            "compress": compress,
        }
        self.generator_ref = generator_ref
        self.progress = self.out / PROGRESS_DIR
        self.done: dict[int, dict[str, Any]] = {}
        self.complete = False
        self._open(resume)

    # -- set-up and resume ---------------------------------------------------------------
    def _open(self, resume: bool) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise DatacoreError(f"{self.out}: exists and is not a directory")
        manifest_path = self.out / MANIFEST
        run_path = self.progress / "run.json"
        if not resume:
            self._clear()
        elif manifest_path.exists():
            try:
                old = orjson.loads(manifest_path.read_bytes())
            except orjson.JSONDecodeError as e:
                raise ManifestError(f"{manifest_path}: corrupt manifest ({e}); use --no-resume to start over") from None
            self._check_same(old.get("spec", {}), manifest_path)
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
        self.progress.mkdir(parents=True, exist_ok=True)
        dump_json(run_path, self.spec)

    def _check_same(self, old: dict[str, Any], where: Path) -> None:
        diffs = _diff(old, self.spec)
        if diffs:
            shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
            raise ConfigMismatchError(
                f"{self.out} holds a run with a different config ({shown}); "
                "use another --out, or --no-resume to discard it"
            )

    def _load_markers(self) -> None:
        for p in sorted(self.progress.glob("shard-*.json")):
            try:
                marker = orjson.loads(p.read_bytes())
            except orjson.JSONDecodeError:
                continue  # torn marker: redo that shard
            if all((self.out / f["path"]).exists() for f in marker["files"].values()):
                self.done[int(marker["index"])] = marker

    def _clear(self) -> None:
        """Remove what an earlier run of ours left in OUT (only our own files)."""
        for name in (MANIFEST, TELEMETRY, REPORT):
            (self.out / name).unlink(missing_ok=True)
        for split in SPLITS:
            d = self.out / split
            if d.is_dir():
                for p in d.glob("part-*.jsonl*"):
                    p.unlink()
        shutil.rmtree(self.progress, ignore_errors=True)

    # -- shards ------------------------------------------------------------------------------
    def shard_paths(self, index: int) -> dict[str, Path]:
        """Final paths of shard ``index``'s files, one per split."""
        return {s: self.out / s / f"part-{index:05d}{_ext(self.compress)}" for s in SPLITS}

    def write_shard(
        self,
        index: int,
        records: Iterable[dict[str, Any]],
        split_key: Callable[[dict[str, Any]], SplitKey],
        telemetry: Telemetry,
        extra: Any = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Write one shard's records (split by ``split_key``), then its progress marker."""
        marker = write_records(self.shard_paths(index), records, split_key, self.splitter)
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

    # -- the end -----------------------------------------------------------------------------
    def finalize(self, report_sections: Sequence[ReportSection] = ()) -> dict[str, Any]:
        """Write telemetry.json, report.html and (last) dataset.json; remove progress files."""
        if self.complete:
            return self.manifest
        from .report import render_report

        indices = sorted(self.done)
        if self.spec["n"] is not None and self.spec["shard_size"]:
            expected = list(range(_num_shards(self.spec["n"], self.spec["shard_size"])))
            missing = sorted(set(expected) - set(indices))
            if missing:
                raise DatacoreError(f"cannot finalize {self.out}: shards {missing[:10]} are not done")
        telemetry = Telemetry.merged([Telemetry.from_dict(self.done[i]["telemetry"]) for i in indices])
        splits = dict.fromkeys(SPLITS, 0)
        shards = []
        for i in indices:
            m = self.done[i]
            for s, e in m["files"].items():
                splits[s] += e["records"]
            shards.append({k: m[k] for k in ("index", "seed", "count", "files")})
        total = sum(splits.values())
        telemetry.count("records", total)
        for s in SPLITS:
            telemetry.count(f"records.{s}", splits[s])
        manifest = {
            "format": FORMAT,
            "generator": self.spec["generator"],
            "generator_ref": self.generator_ref,
            "version": self.spec["version"],
            "datacore_version": _datacore_version(),
            "records": total,
            "splits": splits,
            "spec": self.spec,
            "shards": shards,
        }
        dump_json(self.out / TELEMETRY, telemetry.to_dict())
        html = render_report(manifest, telemetry, report_sections)
        tmp = self.out / (REPORT + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, self.out / REPORT)
        dump_json(self.out / MANIFEST, manifest)
        shutil.rmtree(self.progress, ignore_errors=True)
        self.manifest = manifest
        self.complete = True
        return manifest


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


def _num_shards(n: int, shard_size: int) -> int:
    return (n + shard_size - 1) // shard_size


def write_records(
    paths: dict[str, Path],
    records: Iterable[dict[str, Any]],
    split_key: Callable[[dict[str, Any]], SplitKey],
    splitter: Splitter,
) -> dict[str, dict[str, Any]]:
    """Write records into per-split JSONL files (atomic); add ``id``/``meta`` where missing."""
    with ExitStack() as stack:
        writers = {s: stack.enter_context(JsonlWriter(p)) for s, p in paths.items()}
        for rec in records:
            if "meta" not in rec:
                rec["meta"] = {}
            if "id" not in rec:
                rec = {"id": content_id(rec), **rec}
            writers[splitter(split_key(rec))].write(rec)
    return {s: {"path": paths[s], "records": writers[s].count} for s in paths}


def commit_shard(
    out: Path, index: int, seed: int | None, files: dict[str, dict[str, Any]], telemetry: Telemetry, extra: Any
) -> dict[str, Any]:
    """Hash a finished shard's files and write its progress marker (atomically); return the marker."""
    entries: dict[str, dict[str, Any]] = {}
    for split, info in files.items():
        p = Path(info["path"])
        entries[split] = {
            "path": p.relative_to(out).as_posix(),
            "records": int(info["records"]),
            "bytes": p.stat().st_size,
            "sha256": sha256_file(p),
        }
    marker = {
        "index": index,
        "seed": seed,
        "count": sum(e["records"] for e in entries.values()),
        "files": entries,
        "telemetry": telemetry.to_dict(),
        "extra": extra,
    }
    dump_json(out / PROGRESS_DIR / f"shard-{index:05d}.json", marker)
    return marker


def write_shard(
    generator: Any,
    out: str | os.PathLike[str],
    task: ShardTask,
    splitter: Splitter,
    compress: str | None,
) -> dict[str, Any]:
    """Make and write one shard of ``generator`` into ``out``; return its progress marker.

    Runs in a worker (process or Ray task); the marker is written before returning, so a
    run killed afterwards still counts the shard as done.
    """
    builder_paths = {s: Path(out) / s / f"part-{task.index:05d}{_ext(compress)}" for s in SPLITS}
    telemetry = Telemetry()
    try:
        if has_file_writer(generator):
            tmp = {s: p.with_name(p.name + ".tmp") for s, p in builder_paths.items()}
            for p in tmp.values():
                p.parent.mkdir(parents=True, exist_ok=True)
            counts = generator.write_shard_files(task, tmp, splitter, compress, telemetry)
            for s in SPLITS:
                os.replace(tmp[s], builder_paths[s])
            files = {s: {"path": builder_paths[s], "records": int(counts.get(s, 0))} for s in SPLITS}
        else:
            files = write_records(builder_paths, generator.generate_shard(task, telemetry), generator.split_key, splitter)
    except DatacoreError as e:
        # Re-raise as the base type: subclasses with custom __init__ may not survive pickling.
        raise DatacoreError(f"shard {task.index}: {e}") from None
    return commit_shard(Path(out), task.index, task.seed, files, telemetry, None)


def build_dataset(
    generator: Any,
    out: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    *,
    workers: int | None = None,
    executor: str = "process",
    shard_size: int = 10_000,
    compress: str | None = None,
    resume: bool = True,
    split_ratios: Sequence[float] = DEFAULT_RATIOS,
    split_salt: str = "",
    progress: bool = True,
) -> BuildResult:
    """Generate ``n`` records with ``generator`` into the dataset directory ``out``.

    Shards of ``shard_size`` records are made on a local process pool (``executor="process"``,
    ``workers`` processes, default: all cores), as Ray tasks (``executor="ray"``, connecting
    to ``RAY_ADDRESS`` or starting a local Ray; needs ``datacore[ray]``), or in this process
    (``"inline"``).  The output is byte-identical for every executor and worker count.
    With ``resume`` (the default) an unfinished run in ``out`` is completed, not redone.
    """
    t0 = time.perf_counter()
    if n < 0:
        raise DatacoreError(f"n must be >= 0, got {n}")
    if shard_size < 1:
        raise DatacoreError(f"shard_size must be >= 1, got {shard_size}")
    if executor not in EXECUTORS:
        raise DatacoreError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise DatacoreError(f"workers must be >= 1, got {workers}")
    builder = DatasetBuilder(
        out,
        generator.name,
        generator.version,
        generator.config_dict(),
        seed,
        split_ratios=split_ratios,
        split_salt=split_salt,
        compress=compress,
        resume=resume,
        n=n,
        shard_size=shard_size,
        generator_ref=generator_ref(generator),
    )
    if builder.complete:
        m = builder.manifest
        tel = Telemetry.from_dict(orjson.loads((builder.out / TELEMETRY).read_bytes()))
        return BuildResult(builder.out, m, tel, m["records"], time.perf_counter() - t0, 0)
    tasks = [
        ShardTask(index=i, seed=shard_seed(seed, i), count=min(shard_size, n - i * shard_size), start=i * shard_size)
        for i in range(_num_shards(n, shard_size))
        if i not in builder.done
    ]
    for split in SPLITS:
        (builder.out / split).mkdir(parents=True, exist_ok=True)
    done_records = sum(m["count"] for m in builder.done.values())
    bar = tqdm(
        total=n, initial=done_records, unit="rec", unit_scale=True, file=sys.stderr, disable=not progress,
        desc=generator.name, dynamic_ncols=True,
    )
    try:
        args = (builder.out, builder.splitter, compress)
        if executor == "inline" or (executor == "process" and (workers == 1 or len(tasks) <= 1)):
            for t in tasks:
                _accept(builder, bar, write_shard(generator, builder.out, t, builder.splitter, compress))
        elif executor == "process":
            _run_pool(generator, tasks, args, workers, builder, bar)
        else:
            from .ray_executor import run_ray

            run_ray(generator, tasks, args, workers, lambda m: _accept(builder, bar, m))
    finally:
        bar.close()
    manifest = builder.finalize(report_sections_of(generator, _merged(builder)))
    tel = Telemetry.from_dict(orjson.loads((builder.out / TELEMETRY).read_bytes()))
    return BuildResult(builder.out, manifest, tel, manifest["records"], time.perf_counter() - t0, len(tasks))


def _merged(builder: DatasetBuilder) -> Telemetry:
    return Telemetry.merged([Telemetry.from_dict(builder.done[i]["telemetry"]) for i in sorted(builder.done)])


def _accept(builder: DatasetBuilder, bar: tqdm, marker: dict[str, Any]) -> None:
    builder.add_marker(marker)
    bar.update(marker["count"])


def _start_method() -> str:
    """fork on Linux (fast, and scripts need no ``__main__`` guard); spawn elsewhere.

    ``DATACORE_MP_START=spawn`` overrides it, e.g. when the parent runs threads that do not
    survive a fork.
    """
    method = os.environ.get("DATACORE_MP_START")
    if method:
        return method
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _run_pool(generator: Any, tasks: list[ShardTask], args: tuple, workers: int, builder: DatasetBuilder, bar: tqdm) -> None:
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=get_context(_start_method())) as pool:
        pending = {pool.submit(write_shard, generator, args[0], t, args[1], args[2]) for t in tasks}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    _accept(builder, bar, f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise
