"""The sequential variant of the contract: one loop with feedback (a bandit), one process.

A sequential generator cannot be split into independent shards: each iteration depends on
what the earlier ones produced (rewards, a dedup pool).  It implements ``run(loop)`` and
writes one unit of work at a time through the :class:`Loop` it is handed; datacore keeps
everything else the same as for sharded generators: the output directory and its identity,
resume (each unit's ``extra`` state is handed back so the loop continues exactly where it
stopped), the progress bar, requested vs delivered (``targets(n)`` and the ``"strata"``
histogram), the report and the manifest.

Required of the generator: ``name``, ``version``, ``config_dict()``, ``split_key(record)``
and ``run(loop)``; optional: ``targets(n)``, ``report_sections(telemetry)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .dataset_dir import DatasetBuilder
from .errors import DatacoreError
from .generator import dataset_files_of, report_sections_of
from .progress import progress_bar
from .runner import BuildResult, finished_result, open_builder
from .split import DEFAULT_RATIOS
from .strata import targets_of
from .telemetry import Telemetry


class Loop:
    """What a sequential generator writes through: one unit (a shard) of records at a time."""

    def __init__(self, builder: DatasetBuilder, n: int, seed: int, bar: tqdm) -> None:
        self._builder = builder
        self.n = n
        self.seed = seed
        self._bar = bar
        done = sorted(builder.done)
        #: the ``extra`` state of every unit already written (in order), for a resumed loop to continue from
        self.resumed: list[Any] = [builder.done[i]["extra"] for i in done]
        self._next = (done[-1] + 1) if done else 0
        self.written = sum(int(builder.done[i]["count"]) for i in done)

    @property
    def out(self) -> Path:
        """The dataset directory the loop writes into (for side state a loop keeps beside it)."""
        return self._builder.out

    @property
    def remaining(self) -> int:
        """Records still needed to reach ``n``."""
        return max(0, self.n - self.written)

    def write(self, records: Iterable[dict[str, Any]], split_key: Any, telemetry: Telemetry, extra: Any = None) -> int:
        """Write one unit of records (split by ``split_key``) with its telemetry and resume state."""
        recs = list(records)
        if self.written + len(recs) > self.n:
            raise DatacoreError(f"unit {self._next}: {len(recs)} records would exceed -n {self.n} (written {self.written})")
        marker = self._builder.write_shard(self._next, recs, split_key, telemetry, extra=extra)
        self._next += 1
        self.written += int(marker["count"])
        self._bar.update(int(marker["count"]))
        return int(marker["count"])


def build_sequential(
    generator: Any,
    out: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    *,
    compress: str | None = None,
    resume: bool | str = True,
    split_ratios: Sequence[float] = DEFAULT_RATIOS,
    split_salt: str = "",
    progress: bool = True,
    allow_shortfall: bool = False,
    extra_manifest: dict[str, Any] | None = None,
) -> BuildResult:
    """Run a sequential generator's loop into the dataset directory ``out`` (see the module docstring)."""
    t0 = time.perf_counter()
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DatacoreError(f"n must be an integer >= 0, got {n!r}")
    targets = targets_of(generator, n)
    builder = open_builder(
        generator, out, n, seed, split_ratios=split_ratios, split_salt=split_salt, compress=compress, resume=resume
    )
    if builder.complete:
        return finished_result(builder, t0, 0)
    done_before = len(builder.done)
    bar = progress_bar(n, generator.name, enabled=progress)
    loop = Loop(builder, n, seed, bar)
    bar.update(loop.written)
    try:
        try:
            generator.run(loop)
        finally:
            bar.close()
        builder.finalize(
            lambda tel: report_sections_of(generator, tel),
            files=lambda tel: dataset_files_of(generator, tel),
            targets=targets,
            allow_shortfall=allow_shortfall,
            extra_manifest=extra_manifest,
            environment={"executor": "sequential", "workers": 1},
        )
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            builder.abandon()
        raise
    return finished_result(builder, t0, len(builder.done) - done_before)


def is_sequential(generator: object) -> bool:
    """True for a generator of the sequential variant (``run(loop)``, no ``generate_shard``)."""
    return callable(getattr(generator, "run", None)) and not callable(getattr(generator, "generate_shard", None))
