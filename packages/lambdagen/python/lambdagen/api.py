"""One-call dataset generation: :func:`generate`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from datacore import BuildResult, build_dataset

from .config import LambdaConfig
from .errors import ScheduleError
from .generator import LambdaGenerator


def generate(
    out: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    *,
    config: LambdaConfig | None = None,
    workers: int | None = None,
    executor: str = "process",
    shard_size: int = 10_000,
    compress: str | None = "zst",
    resume: bool = True,
    split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
    progress: bool = False,
    **config_fields: Any,
) -> BuildResult:
    """Write ``n`` reduction examples to the dataset directory ``out`` (datacore layout).

    ``config`` (or keyword fields of :class:`LambdaConfig`, e.g. ``max_steps=50``) decides
    the content; ``seed`` and ``shard_size`` too.  ``workers`` / ``executor`` only decide
    how fast: the files are byte-identical for any of them.  Resume is datacore's.
    """
    if config is None:
        config = LambdaConfig(**config_fields)
    elif config_fields:
        import attrs

        config = attrs.evolve(config, **config_fields)
    if config.split_by and tuple(split_ratios) != (0.8, 0.1, 0.1):
        raise ScheduleError("split_by decides the splits itself; it cannot be combined with split_ratios")
    res = build_dataset(
        LambdaGenerator(config, run_seed=seed),
        out,
        n,
        seed,
        workers=workers,
        executor=executor,
        shard_size=shard_size,
        compress=compress,
        resume=resume,
        split_ratios=split_ratios,
        progress=progress,
    )
    return res  # vocab.json (with tokens) is one of the generator's dataset files
