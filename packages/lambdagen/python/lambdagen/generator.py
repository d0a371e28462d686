"""The datacore generator: the Rust core writes each shard's files; datacore does the rest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
from datacore import ReportSection, ShardTask, Splitter, Telemetry
from datacore.split import SPLITS

from ._version import __version__
from .config import LambdaConfig
from .errors import ScheduleError

_SPECS: dict[int, Any] = {}


def _spec(config: LambdaConfig) -> Any:
    # One Rust spec per config per process (worker processes build their own on first use).
    key = hash(config)
    spec = _SPECS.get(key)
    if spec is None:
        spec = _SPECS[key] = config.spec()
    return spec


def _merge_rust_telemetry(telemetry: Telemetry, data: str) -> None:
    part = Telemetry.from_dict(orjson.loads(data))
    telemetry.merge(part)


@attrs.frozen
class LambdaGenerator:
    """Beta-reduction examples (one per normal-order step) from uniformly sampled closed terms.

    The split key is the start term of the record's trace, so a whole trace lands in one
    split.  ``num_shards`` (the run's shard count, ``ceil(n / shard_size)``) and ``run_seed``
    (the run's seed) are set by :func:`lambdagen.generate` and the CLI; they turn on the
    cross-shard guarantees: start terms of cells with fewer than 2^96 terms are drawn as
    distinct ranks of a keyed permutation (never repeated in the run), and small pairs are
    emitted only by their owner shard (see :class:`LambdaConfig`).  With ``num_shards=0``
    deduplication is exact within each shard only.
    ``write_shard_files`` hands the whole shard to the Rust core (rayon over chunks);
    ``generate_shard`` yields the same records as dicts (for executors that need them).
    """

    config: LambdaConfig = attrs.field(factory=LambdaConfig)
    num_shards: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    run_seed: int = attrs.field(default=0)
    name: str = attrs.field(default="lambdagen", init=False)
    version: str = attrs.field(default=__version__, init=False)

    def config_dict(self) -> dict[str, Any]:
        """Full JSON config (stored in the manifest and compared on resume)."""
        return {**self.config.to_dict(), "num_shards": self.num_shards, "run_seed": self.run_seed}

    def split_key(self, record: dict[str, Any]) -> str:
        """The start term of the record's trace (so a whole trace lands in one split).

        Records from :meth:`generate_shard` carry it as ``meta.start``; in the files the
        Rust core writes, the step-0 record's ``input`` is the start term.
        """
        meta = record.get("meta", {})
        if "start" in meta:
            return meta["start"]
        if meta.get("step") == 0:
            return record["input"]
        raise ScheduleError(
            f"record {record.get('id')!r}: its split key is the start term of trace {meta.get('trace_id')!r}, "
            "which only the step-0 record (or meta.start) carries"
        )

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
            counts, tel = _spec(self.config).write_shard(
                task.seed,
                task.count,
                [str(paths[s]) for s in SPLITS],
                compress,
                splitter.t1,
                splitter.t2,
                salt,
                self._threads(),
                task.index,
                self.num_shards,
                self.run_seed & (2**64 - 1),
            )
        except RuntimeError as e:
            raise ScheduleError(str(e)) from None
        _merge_rust_telemetry(telemetry, tel)
        return dict(zip(SPLITS, counts))

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterator[dict[str, Any]]:
        """The records of shard ``task`` as dicts (same content as :meth:`write_shard_files`).

        The split is decided by the start term, which is not the input of later steps, so
        this path is for inspection; datacore uses :meth:`write_shard_files` when present.
        """
        data, _splits, rec_start, starts, tel = _spec(self.config).shard_lines(
            task.seed, task.count, 800, 900, b"", self._threads(), task.index, self.num_shards, self.run_seed & (2**64 - 1)
        )
        _merge_rust_telemetry(telemetry, tel)
        for line, si in zip(data.splitlines(), rec_start):
            rec = orjson.loads(line)
            rec["meta"]["start"] = starts[si]
            yield rec

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Tables for report.html: quota shares and dedup/filter counters (datacore already
        charts every histogram: trace steps, statuses, cells, sizes, depths)."""
        from datacore.report import table_html

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
            total = sum(h[hist].values()) or 1
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
                "duplicate_start_terms_dropped",
                "duplicate_pairs_dropped",
                "small_pairs_left_to_owner_shard",
                "start_terms_normal_skipped",
                "traces_over_quota",
                "examples_over_quota",
                "examples_over_size_quota",
                "examples_over_depth_quota",
            )
        ]
        out.append(ReportSection("Deduplication and filtering (summed over shards)", table_html(["counter", "value"], rows)))
        return out
