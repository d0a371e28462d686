"""Build orchestration: plan the shards of a run, execute them, check delivery, finalize.

The layers below it: :mod:`datacore.shards` (one shard, in a worker),
:mod:`datacore.executors` (where shards run) and :mod:`datacore.dataset_dir` (the state of
the output directory: resume, commit, manifest).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from .dataset_dir import DatasetBuilder, code_digest, num_shards
from .errors import DatacoreError
from .executors import EXECUTORS, WriteArgs, make_executor
from .generator import ShardTask, dataset_files_of, generator_ref, report_sections_of
from .manifest import TELEMETRY
from .progress import progress_bar
from .remote import is_remote
from .seeds import shard_seed
from .shards import content_id, write_records, write_shard
from .split import DEFAULT_RATIOS, SPLITS
from .strata import targets_of
from .telemetry import Telemetry

__all__ = ["BuildResult", "DatasetBuilder", "build_dataset", "content_id", "write_records", "write_shard"]


@contextlib.contextmanager
def _run_budget(generator: Any, out: Path) -> Iterator[None]:
    """Hold a generator's LLM budget once per run: a file-locked ledger every worker attaches to.

    A generator that spends money declares ``llm_budget_usd() -> float | None``.  The ledger
    lives in ``OUT/.datacore/`` (so a resumed run goes on counting what the killed one spent)
    and is named to the workers by ``DATACORE_LLM_LEDGER``, which they inherit.
    """
    fn = getattr(generator, "llm_budget_usd", None)
    budget = fn() if callable(fn) else None
    if budget is None:
        yield
        return
    from .llm import LEDGER_ENV, BudgetLedger

    ledger = BudgetLedger.create(out / ".datacore" / "llm-budget.json", budget)
    old = os.environ.get(LEDGER_ENV)
    os.environ[LEDGER_ENV] = str(ledger.path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(LEDGER_ENV, None)
        else:
            os.environ[LEDGER_ENV] = old


@attrs.frozen
class BuildResult:
    """What :func:`build_dataset` returns: the manifest, merged telemetry and timing."""

    #: the dataset directory (or the URL of a dataset written to object storage)
    out: Path | str
    manifest: dict[str, Any]
    telemetry: Telemetry
    records: int
    seconds: float
    shards_run: int


def open_builder(generator: Any, out: str | os.PathLike[str], n: int, seed: int, **kw: Any) -> DatasetBuilder:
    """The dataset directory of a run of ``generator``: its identity (name, version, code digest, config) and state."""
    return DatasetBuilder(
        out,
        generator.name,
        generator.version,
        generator.config_dict(),
        seed,
        n=n,
        generator_ref=generator_ref(generator),
        code_digest=code_digest(generator),
        growable=bool(getattr(generator, "growable", False)),
        **kw,
    )


def finished_result(builder: DatasetBuilder, t0: float, shards_run: int) -> BuildResult:
    """The :class:`BuildResult` of a finished dataset directory (manifest and telemetry read back)."""
    m = builder.manifest
    tel = Telemetry.from_dict(orjson.loads((builder.out / TELEMETRY).read_bytes()))
    return BuildResult(builder.out, m, tel, m["records"], time.perf_counter() - t0, shards_run)


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
    resume: bool | str = True,
    split_ratios: Sequence[float] = DEFAULT_RATIOS,
    split_salt: str = "",
    progress: bool = True,
    allow_shortfall: bool = False,
    storage_options: dict[str, Any] | None = None,
    _on_shard: Callable[[dict[str, Any]], None] | None = None,
) -> BuildResult:
    """Generate ``n`` records with ``generator`` into the dataset directory ``out``.

    ``out`` may be an fsspec URL (``"s3://bucket/prefix"``; ``storage_options`` go to fsspec):
    the run is made in a local staging directory and published shard by shard, the manifest
    last (:mod:`datacore.remote`).

    Shards of ``shard_size`` records are made on a local process pool (``executor="process"``,
    ``workers`` processes, default: all cores), as Ray tasks (``executor="ray"``, connecting
    to ``RAY_ADDRESS`` or starting a local Ray; needs ``datacore[ray]``), or in this process
    (``"inline"``).  The output is byte-identical for every executor and worker count.
    ``resume``: ``"if_possible"``/``True`` (finish an unfinished run of the same identity),
    ``"always"`` (refuse if there is none), ``"never"``/``False`` (start over).
    The run ends with :class:`~datacore.ShortfallError` when it delivered other than ``n``
    records or missed a declared target stratum, unless ``allow_shortfall``.
    """
    t0 = time.perf_counter()
    # Every check that can refuse the run comes before anything is written.
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DatacoreError(f"n must be an integer >= 0, got {n!r}")
    if shard_size < 1:
        raise DatacoreError(f"shard_size must be >= 1, got {shard_size}")
    if executor not in EXECUTORS:
        raise DatacoreError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise DatacoreError(f"workers must be >= 1, got {workers}")
    if is_remote(out):
        return _build_remote(
            generator,
            str(out),
            n,
            seed,
            storage_options,
            workers=workers,
            executor=executor,
            shard_size=shard_size,
            compress=compress,
            resume=resume,
            split_ratios=split_ratios,
            split_salt=split_salt,
            progress=progress,
            allow_shortfall=allow_shortfall,
        )
    targets = targets_of(generator, n)
    builder = open_builder(
        generator,
        out,
        n,
        seed,
        split_ratios=split_ratios,
        split_salt=split_salt,
        compress=compress,
        resume=resume,
        shard_size=shard_size,
    )
    if builder.complete:
        return finished_result(builder, t0, 0)
    tasks = [
        ShardTask(
            index=i,
            seed=shard_seed(seed, i),
            count=min(shard_size, n - i * shard_size),
            start=i * shard_size,
            shards=num_shards(n, shard_size),
            total=n,
            run_seed=seed,
        )
        for i in range(num_shards(n, shard_size))
        if i not in builder.done
    ]
    for split in SPLITS:
        (builder.out / split).mkdir(parents=True, exist_ok=True)
    done_records = sum(m["count"] for m in builder.done.values())
    bar = progress_bar(n, generator.name, enabled=progress, initial=done_records)

    def accept(marker: dict[str, Any]) -> None:
        builder.add_marker(marker)
        if _on_shard is not None:
            _on_shard(marker)
        bar.update(marker["count"])

    try:
        try:
            with _run_budget(generator, builder.out):
                make_executor(executor, workers, len(tasks)).run(
                    generator, tasks, WriteArgs(builder.out, builder.splitter, compress), accept
                )
        finally:
            bar.close()
        builder.finalize(
            lambda tel: report_sections_of(generator, tel),
            files=lambda tel: dataset_files_of(generator, tel),
            targets=targets,
            allow_shortfall=allow_shortfall,
            environment={"executor": executor, "workers": workers},
        )
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            builder.abandon()  # nothing left behind unless finished shards are worth a resume
        raise
    return finished_result(builder, t0, len(tasks))


def _build_remote(
    generator: Any, url: str, n: int, seed: int, storage_options: dict[str, Any] | None, *, resume: bool | str, **kw: Any
) -> BuildResult:
    """:func:`build_dataset` into an fsspec URL: staged locally, published shard by shard, manifest last."""
    from .dataset_dir import _resume_mode
    from .remote import prepare_remote

    mode = _resume_mode(resume)
    target = prepare_remote(url, storage_options, mode)
    stage = target.staging
    result = build_dataset(
        generator,
        stage,
        n,
        seed,
        resume="if_possible" if mode == "never" else mode,  # prepare_remote already started over
        _on_shard=lambda marker: target.put_shard(stage, marker),
        **kw,
    )
    if result.shards_run or "dataset.json" not in target.published:
        target.publish(stage, result.manifest)
    shutil.rmtree(stage, ignore_errors=True)  # ours; the dataset now lives at the URL
    return attrs.evolve(result, out=url)
