"""Making and writing one shard: the code that runs inside a worker.

A worker (this process, a pool process or a Ray worker) holds one set-up generator at a
time: :func:`prepare` calls the generator's optional ``setup()`` exactly once per worker and
run, so heavy state (compiled tables, a Rust spec, model weights, an LLM client) is built
once per worker instead of once per shard or in a module-level cache of the generator.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from .errors import DatacoreError, RecordError
from .generator import ShardTask, has_file_writer
from .jsonl import JsonlWriter, encode_with_id
from .manifest import dump_json, sha256_file
from .split import SPLITS, SplitKey, Splitter
from .telemetry import Telemetry

PROGRESS_DIR = ".datacore"
COMPRESSIONS = (None, "gz", "zst")

Accept = Callable[[dict[str, Any]], None]


@attrs.frozen
class WriteArgs:
    """What every shard of a run is written with: the output directory, splitter and compression."""

    out: Path
    splitter: Splitter
    compress: str | None


# The set-up generator of this worker process, keyed by the run token that shipped it.
_worker: dict[str, Any] = {}


def content_id(record: dict[str, Any]) -> str:
    """Content hash of a record (without an ``id``): xxh3-128 hex of the line bytes datacore
    writes for it (:func:`datacore.jsonl.encode_with_id`; the same bytes, made once, when written)."""
    return encode_with_id(record)[0]


def shard_ext(compress: str | None) -> str:
    """File extension of shard files for a compression (``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``)."""
    return ".jsonl" + ("" if compress is None else f".{compress}")


def shard_paths(out: Path, index: int, compress: str | None) -> dict[str, Path]:
    """Final paths of shard ``index``'s files, one per split."""
    return {s: out / s / f"part-{index:05d}{shard_ext(compress)}" for s in SPLITS}


def setup_generator(generator: Any) -> Any:
    """Run the generator's optional ``setup()`` hook (once); return the generator."""
    fn = getattr(generator, "setup", None)
    if callable(fn):
        fn()
    return generator


def prepare(token: str, generator: Any) -> Any:
    """The set-up generator for run ``token`` in this worker (set up on first use)."""
    gen = _worker.get(token)
    if gen is None:
        _worker.clear()  # one run at a time per worker: drop an earlier run's state
        gen = _worker[token] = setup_generator(generator)
    return gen


def write_records(
    paths: dict[str, Path],
    records: Iterable[dict[str, Any]],
    split_key: Callable[[dict[str, Any]], SplitKey],
    splitter: Splitter,
    split_of: Callable[[dict[str, Any]], str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write records into per-split JSONL files (atomic); add ``id``/``meta`` where missing.

    ``split_of`` (a generator's optional ``split_of(record)``) chooses a record's split itself
    (out-of-distribution splits by length, say); where it returns None the hash of
    ``split_key`` decides, as for every other generator.
    """
    with ExitStack() as stack:
        writers = {s: stack.enter_context(JsonlWriter(p)) for s, p in paths.items()}
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise DatacoreError(f"record {i} is a {type(rec).__name__}, not an object")
            if "meta" not in rec:
                rec["meta"] = {}
            if "id" in rec:
                writers[record_split(rec, split_key, splitter, split_of)].write(rec)
                continue
            # One encoding: the id is the hash of the very bytes the line carries after it.
            try:
                rid, line = encode_with_id(rec)
            except RecordError as e:  # name the shard's record, not a file not yet chosen
                raise RecordError(None, i, None, e.field, e._why) from None
            rec = {"id": rid, **rec}
            writers[record_split(rec, split_key, splitter, split_of)].write_line_bytes(line)
    return {s: {"path": paths[s], "records": writers[s].count} for s in paths}


def record_split(
    rec: dict[str, Any],
    split_key: Callable[[dict[str, Any]], SplitKey],
    splitter: Splitter,
    split_of: Callable[[dict[str, Any]], str | None] | None = None,
) -> str:
    """The split of ``rec``: the generator's own choice where it makes one, else the key's hash."""
    if split_of is not None:
        chosen = split_of(rec)
        if chosen is not None:
            if chosen not in SPLITS:
                raise DatacoreError(f"record {rec.get('id', '?')}: split_of gave {chosen!r}; allowed: {', '.join(SPLITS)}")
            return chosen
    return splitter(split_key(rec))


def commit_shard(
    out: Path,
    index: int,
    seed: int | None,
    files: dict[str, dict[str, Any]],
    telemetry: Telemetry,
    extra: Any,
    *,
    expected: int | None = None,
    seconds: float | None = None,
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
        "expected": expected,
        "seconds": seconds,
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
    run killed afterwards still counts the shard as done.  A shard with more records than
    asked is a generator bug and fails; one with fewer is recorded (``expected``) and judged
    by the run's requested-vs-delivered check.
    """
    import time

    t0 = time.perf_counter()
    final = shard_paths(Path(out), task.index, compress)
    telemetry = Telemetry()
    files: dict[str, dict[str, Any]]
    try:
        if has_file_writer(generator):
            tmp = {s: p.with_name(p.name + ".tmp") for s, p in final.items()}
            for p in tmp.values():
                p.parent.mkdir(parents=True, exist_ok=True)
            try:
                counts = generator.write_shard_files(task, tmp, splitter, compress, telemetry)
                for s in SPLITS:
                    os.replace(tmp[s], final[s])
            finally:
                for p in tmp.values():
                    p.unlink(missing_ok=True)
            files = {s: {"path": final[s], "records": int(counts.get(s, 0))} for s in SPLITS}
        else:
            files = write_records(
                final,
                generator.generate_shard(task, telemetry),
                generator.split_key,
                splitter,
                getattr(generator, "split_of", None),
            )
    except DatacoreError as e:
        # Re-raise as the base type: subclasses with custom __init__ may not survive pickling.
        raise DatacoreError(f"shard {task.index}: {e}") from None
    count = sum(int(f["records"]) for f in files.values())
    if count > task.count:
        for f in files.values():
            Path(f["path"]).unlink(missing_ok=True)
        raise DatacoreError(
            f"shard {task.index}: generator {getattr(generator, 'name', '?')} wrote {count} records, {task.count} were asked"
        )
    return commit_shard(
        Path(out), task.index, task.seed, files, telemetry, None, expected=task.count, seconds=round(time.perf_counter() - t0, 6)
    )


def run_task(
    token: str, generator: Any, out: str | os.PathLike[str], task: ShardTask, splitter: Splitter, compress: str | None
) -> dict[str, Any]:
    """Worker entry point: the set-up generator of this run writes shard ``task``."""
    return write_shard(prepare(token, generator), out, task, splitter, compress)


def pool_initializer(token: str, generator: Any, parent_pid: int) -> None:
    """Process-pool worker start: die with the parent (Linux), then set the generator up once."""
    die_with_parent(parent_pid)
    prepare(token, generator)


def pool_task(token: str, out: str, task: ShardTask, splitter: Splitter, compress: str | None) -> dict[str, Any]:
    """A pool task: the generator was shipped once, to the initializer, not with every task."""
    gen = _worker.get(token)
    if gen is None:  # pragma: no cover - the initializer always ran first
        raise DatacoreError("worker has no generator for this run")
    return write_shard(gen, out, task, splitter, compress)


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only; no-op elsewhere).

    Without it, killing only the parent of a pool leaves workers running and writing into
    the output directory, and a restart collides with them.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: keep going without it
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
