"""The datacore generator: the Rust core writes each shard's files; datacore does the rest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
from datacore import SPLITS, ReportSection, ShardTask, Splitter, Telemetry

from ._version import __version__
from .config import INF, LambdaConfig
from .errors import ScheduleError

#: Telemetry histogram datacore compares against :meth:`LambdaGenerator.targets`
#: (``datacore.STRATA``; spelled out so this module also imports before datacore has it).
STRATA = "strata"
#: Allowed absolute deviation of a delivered share (the kit's rule).
TOLERANCE = 0.02


def _bucket_label(lo: int, hi: int) -> str:
    """``LO-HI``, or ``LO-`` for an open bucket: the stratum names the Rust core observes."""
    return f"{lo}-" if hi >= INF else f"{lo}-{hi}"


def _merge_rust_telemetry(telemetry: Telemetry, data: str) -> None:
    part = Telemetry.from_dict(orjson.loads(data))
    telemetry.merge(part)


@attrs.frozen
class LambdaGenerator:
    """Beta-reduction examples (one per normal-order step) from uniformly sampled closed terms.

    The split key is ``meta.trace_id`` (a hash of the start term), so a whole trace lands
    in one split.  Each cell of the schedule gets its weight's share of the records (record slot
    ``p`` of the run belongs to the cell its golden-ratio point falls in), declared by
    :meth:`targets` and counted in the ``strata`` histogram.  Start terms of cells with fewer
    than 2^96 terms are distinct across the whole run: trace ``m`` of a cell in shard ``i``
    takes rank ``perm(m * shards + i)``, ``shards`` being the run's shard count from each
    ``ShardTask.shards`` (datacore sets it; a hand-made task without it leaves start terms
    distinct within its shard alone) and ``perm`` keyed by the run's seed (``ShardTask.run_seed``;
    ``run_seed=`` overrides it, and keys hand-made tasks that carry none).  A curriculum needs the
    run's ``n``, which datacore passes as ``ShardTask.total`` (``records=n`` is still accepted and
    must then match it).  No other deduplication: traces are kept whole.  With
    ``config.split_by`` the split is out of distribution (:meth:`split_of`).
    ``write_shard_files`` hands the whole shard to the Rust core (threads over chunks);
    ``generate_shard`` yields the same records as dicts (for executors that need them).
    """

    config: LambdaConfig = attrs.field(factory=LambdaConfig)
    run_seed: int | None = attrs.field(default=None)
    records: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    name: str = attrs.field(default="lambdagen", init=False)
    version: str = attrs.field(default=__version__, init=False)
    # The Rust spec, built once per worker process by setup() (not part of the config, not pickled).
    _rust: Any = attrs.field(init=False, default=None, eq=False, repr=False, hash=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "run_seed": self.run_seed, "records": self.records}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "name", "lambdagen")
        object.__setattr__(self, "version", __version__)
        object.__setattr__(self, "_rust", None)

    def setup(self) -> None:
        """Build the Rust spec (count tables, schedule) once per worker process."""
        if self._rust is None:
            object.__setattr__(self, "_rust", self.config.spec())

    def _spec(self) -> Any:
        self.setup()
        return self._rust

    def targets(self, n: int) -> list[Any]:
        """The strata promised for a run of ``n`` records: every cell's share of the records,
        and each quota bucket's share (``steps=LO-HI``, ``size=...``, ``depth=...``)."""
        from datacore import Target

        out = [Target(name, share, TOLERANCE) for name, share in self.config.cell_shares().items()]
        for field, what in (("quotas", "steps"), ("size_quotas", "size"), ("depth_quotas", "depth")):
            for lo, hi, share in getattr(self.config, field):
                out.append(Target(f"{what}={_bucket_label(lo, hi)}", share, TOLERANCE))
        return out

    def config_dict(self) -> dict[str, Any]:
        """Full JSON config (stored in the manifest and compared on resume), with the split rule
        in words (``split_rule``, None for the hash split); ``records`` only when given with a
        curriculum (the run's ``n`` is in the manifest anyway)."""
        d = {**self.config.to_dict(), "run_seed": self.run_seed, "split_rule": self.config.split_rule()}
        if self.config.curriculum and self.records:
            d["records"] = self.records
        return d

    def split_of(self, record: dict[str, Any]) -> str | None:
        """The record's split under an out-of-distribution split (``config.split_by``), from
        its trace's ``meta.total_steps``, ``meta.start_size`` or ``meta.start_depth``; None
        (the hash of :meth:`split_key`) without one.  The Rust writer applies the same rule."""
        by = self.config.split_by
        if not by:
            return None
        meta = record.get("meta")
        field = {"steps": "total_steps", "size": "start_size", "depth": "start_depth"}[by]
        value = meta.get(field) if isinstance(meta, dict) else None
        if not isinstance(value, int):
            raise ScheduleError(f"record {record.get('id')!r}: no meta.{field}, which decides its split")
        return self.config.split_of_value(value)

    def dataset_files(self, telemetry: Telemetry) -> dict[str, bytes]:
        """``vocab.json`` with tokenized output (the vocabulary and the longest sequences), which
        datacore writes before the manifest and lists with its sha256."""
        if not self.config.tokens:
            return {}
        from .tokens import vocab_bytes

        return {"vocab.json": vocab_bytes(self.config.max_size, telemetry.histograms)}

    def split_key(self, record: dict[str, Any]) -> str:
        """The record's ``meta.trace_id`` (xxh3-64 hex of its trace's start term), which every
        record carries: a whole trace, and every trace of one start term, lands in one split."""
        meta = record.get("meta")
        tid = meta.get("trace_id") if isinstance(meta, dict) else None
        if not isinstance(tid, str):
            raise ScheduleError(f"record {record.get('id')!r}: no meta.trace_id, which is its split key")
        return tid

    def _run_seed(self, task: ShardTask) -> int:
        """The seed keying the small cells' permutations: ``run_seed=`` if given, else the run's."""
        seed = self.run_seed if self.run_seed is not None else task.run_seed
        return (seed or 0) & (2**64 - 1)

    def _total(self, task: ShardTask) -> int:
        """The run's record count: ``ShardTask.total`` (datacore sets it), else ``records=``."""
        if task.total and self.records and task.total != self.records:
            raise ScheduleError(
                f"LambdaGenerator(records={self.records}) does not match the run's record count {task.total}; "
                "leave records= out (datacore passes the run's n to every shard)"
            )
        return task.total or self.records

    def _threads(self) -> int:
        return self.config.threads or int(os.environ.get("LAMBDAGEN_THREADS", "0") or 0)

    def write_shard_files(
        self, task: ShardTask, paths: dict[str, Path], splitter: Splitter, compress: str | None, telemetry: Telemetry
    ) -> dict[str, int]:
        """Let the Rust core make shard ``task`` and write the three split files."""
        if compress not in (None, "gz", "zst"):
            raise ScheduleError(f"compress must be None, 'gz' or 'zst', got {compress!r}")
        salt = splitter._salt if hasattr(splitter, "_salt") else b""
        try:
            counts, tel = self._spec().write_shard(
                task.seed,
                task.count,
                [str(paths[s]) for s in SPLITS],
                compress,
                splitter.t1,
                splitter.t2,
                salt,
                self._threads(),
                task.index,
                task.shards,
                self._run_seed(task),
                task.start,
                self._total(task),
            )
        except RuntimeError as e:
            # The core removed what it had written; make sure of it (no partial files).
            for p in paths.values():
                Path(p).unlink(missing_ok=True)
            raise ScheduleError(str(e)) from None
        _merge_rust_telemetry(telemetry, tel)
        return dict(zip(SPLITS, counts))

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterator[dict[str, Any]]:
        """The records of shard ``task`` as dicts (same content as :meth:`write_shard_files`).

        The split is decided by the start term, which is not the input of later steps, so
        this path is for inspection; datacore uses :meth:`write_shard_files` when present.
        """
        try:
            data, _splits, rec_start, starts, tel = self._spec().shard_lines(
                task.seed,
                task.count,
                800,
                900,
                b"",
                self._threads(),
                task.index,
                task.shards,
                self._run_seed(task),
                task.start,
                self._total(task),
            )
        except RuntimeError as e:
            raise ScheduleError(str(e)) from None
        _merge_rust_telemetry(telemetry, tel)
        for line, si in zip(data.splitlines(), rec_start):
            rec = orjson.loads(line)
            rec["meta"]["start"] = starts[si]
            yield rec

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Tables for report.html: quota shares and dedup/filter counters (datacore already
        charts every histogram: trace steps, statuses, cells, sizes, depths)."""
        from datacore import table_html

        h = telemetry.histograms
        out = []
        for field, hist, label in (
            ("quotas", "quota_examples", "trace steps"),
            ("size_quotas", "quota_examples_size", "input size"),
            ("depth_quotas", "quota_examples_depth", "input depth"),
        ):
            quotas = getattr(self.config, field)
            if not (quotas and h.get(hist)):
                continue
            total: float = sum(h[hist].values()) or 1
            rows = []
            for lo, hi, share in quotas:
                key = f"{lo}-{hi}"
                got = h[hist].get(key, 0)
                rows.append([key, f"{share:.3f}", f"{got / total:.3f}", got])
            out.append(
                ReportSection(f"Quotas by {label}", table_html([label, "configured share", "actual share", "examples"], rows))
            )
        c = telemetry.counters
        rows = [
            [k, c.get(k, 0)]
            for k in (
                "traces",
                "examples",
                "start_terms_drawn",
                "start_terms_by_permutation",
                "duplicate_start_terms_dropped",
                "start_terms_normal_skipped",
                "start_terms_size_capped_skipped",
                "traces_thinned",
                "examples_thinned_away",
                "traces_over_quota",
                "examples_over_quota",
                "examples_over_size_quota",
                "examples_over_depth_quota",
            )
        ]
        out.append(ReportSection("Deduplication and filtering (summed over shards)", table_html(["counter", "value"], rows)))
        strata = h.get(STRATA, {})
        total = telemetry.counters.get("examples", 0) or sum(v for k, v in strata.items() if k.startswith("cell=")) or 1
        rows = [
            [name, f"{share:.3f}", f"{strata.get(name, 0) / total:.3f}", strata.get(name, 0)]
            for name, share in self.config.cell_shares().items()
        ]
        out.append(
            ReportSection(
                "Records per schedule cell", table_html(["cell", "configured share", "delivered share", "records"], rows)
            )
        )
        return out
