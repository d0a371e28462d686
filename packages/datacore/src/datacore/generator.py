"""The contract every generator shares with :func:`datacore.build_dataset`.

A generator is a picklable object with a frozen config.  It makes one shard at a time:
given a :class:`ShardTask` (index, derived seed, count) it yields ``count`` records (dicts)
and adds its statistics to the :class:`~datacore.telemetry.Telemetry` it is handed.
datacore does the rest: seeds, execution, splitting, writing, manifest, resume, report.

Required:

* ``name: str`` and ``version: str`` attributes (recorded in the manifest);
* ``config_dict() -> dict``: the full config, JSON-able (recorded, and compared on resume);
* ``generate_shard(task, telemetry) -> Iterable[dict]``: the records of one shard; each
  record is a dict with a ``meta`` dict (datacore adds ``meta: {}`` if missing and an
  ``id`` content hash if missing);
* ``split_key(record) -> str | bytes | Sequence[int]``: the key whose hash picks the split.

Optional:

* ``setup() -> None``: build heavy per-worker state (compiled tables, a Rust spec, model
  weights, an LLM client).  datacore calls it once per worker process (or Ray worker, or
  once in this process for the inline executor) before the worker's first shard, on the
  instance that then makes the shards.  Keep such state out of ``config_dict()``.
* ``split_of(record) -> "train" | "val" | "test" | None``: the generator chooses a record's
  split itself (out-of-distribution splits: long strings or deep terms only in val/test).
  None leaves the record to the hash of its ``split_key``.  Make it a function of the
  split key's content, so one key never lands in two splits (the conformance suite checks),
  and put its rule in ``config_dict()`` so the manifest records it.  Generators with their
  own file writer apply the same rule there.
* ``growable = True`` (class attribute): a shard's content depends only on its task's
  index, seed, start and count, never on ``n`` or ``task.shards``.  A finished dataset then
  grows (or shrinks) in place when run again with another ``-n``: every shard whose task is
  unchanged is kept (its sha256 re-checked), only the rest is made, and the result is
  byte-identical to a fresh run with the new ``n`` (the conformance suite's ``growth`` check).
  Without it another ``n`` is another dataset (refused, or ``--resume never``).
* ``targets(n) -> list[Target]``: the strata a run of ``n`` records promises (shares with
  tolerances).  The generator counts every record it makes into the ``"strata"`` histogram
  of the shard telemetry (``telemetry.observe(STRATA, name)``); datacore compares at the
  end and fails the run on a miss unless the user allowed a shortfall.
* ``write_shard_files(task, paths, splitter, compress, telemetry) -> dict[str, int]``: for
  generators that write their shard files themselves (lambdagen's Rust core).  ``paths``
  maps each split to the temporary file to write (all three must be written, empty if need
  be); return the record count per split.  datacore hashes and renames the files.
* ``report_sections(telemetry) -> list[ReportSection]``: extra charts/tables for report.html.
* ``dataset_files(telemetry) -> dict[str, bytes]``: dataset-level files that belong with the
  records (an FSM's JSON, a token vocabulary), by plain file name.  datacore writes them into the
  dataset directory before the manifest, lists them (bytes, sha256) under ``extra_files``,
  checks them on resume and in ``verify``, and publishes them with a remote ``--out``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from .split import SplitKey, Splitter
from .telemetry import Telemetry


@attrs.frozen
class ShardTask:
    """One unit of work: shard ``index`` of a run, its derived ``seed`` and record ``count``.

    ``start`` is the global index of the shard's first record (``index * shard_size``);
    ``shards`` the run's shard count, for generators that partition a key space across shards;
    ``total`` the run's ``-n`` and ``run_seed`` its ``--seed``, for generators whose plan spans the
    whole run (a curriculum order, a per-run permutation). A generator that reads ``total`` makes
    each shard depend on ``-n``, so it must not declare itself ``growable``.
    """

    index: int
    seed: int
    count: int
    start: int
    #: the number of shards in the run (0 when not known, e.g. a hand-made task)
    shards: int = 0
    #: the run's record count ``-n`` (0 when not known)
    total: int = 0
    #: the run's seed (None when not known)
    run_seed: int | None = None


@attrs.frozen
class ReportSection:
    """A piece of report.html: a title and an HTML fragment (an inline SVG chart, a table)."""

    title: str
    html: str


@runtime_checkable
class Generator(Protocol):
    """What :func:`datacore.build_dataset` needs from a generator (see the module docstring)."""

    name: str
    version: str

    def config_dict(self) -> dict[str, Any]: ...

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterable[dict[str, Any]]: ...

    def split_key(self, record: dict[str, Any]) -> SplitKey: ...


class FileWritingGenerator(Generator, Protocol):
    """A generator that writes its shard files itself (optional extension)."""

    def write_shard_files(
        self,
        task: ShardTask,
        paths: dict[str, Path],
        splitter: Splitter,
        compress: str | None,
        telemetry: Telemetry,
    ) -> dict[str, int]: ...


def generator_ref(gen: object) -> str:
    """Return ``module:QualName`` of a generator's class, for the manifest."""
    cls = type(gen)
    return f"{cls.__module__}:{cls.__qualname__}"


def has_file_writer(gen: object) -> bool:
    """True if the generator writes its own shard files."""
    return callable(getattr(gen, "write_shard_files", None))


def dataset_files_of(gen: object, telemetry: Telemetry) -> dict[str, bytes]:
    """Ask a generator for its dataset-level files (none if it has no such method)."""
    fn = getattr(gen, "dataset_files", None)
    return dict(fn(telemetry)) if callable(fn) else {}


def report_sections_of(gen: object, telemetry: Telemetry) -> Sequence[ReportSection]:
    """Ask a generator for its extra report sections (none if it has no such method)."""
    fn = getattr(gen, "report_sections", None)
    return list(fn(telemetry)) if callable(fn) else []
