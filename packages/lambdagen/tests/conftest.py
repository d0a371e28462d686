"""Shared helpers for lambdagen's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from datacore import read_jsonl


def _read_dataset(out: Path) -> dict[str, list[dict]]:
    """All records of a dataset directory, per split, in shard order."""
    out = Path(out)
    res: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for split in res:
        for p in sorted((out / split).glob("part-*")):
            res[split].extend(read_jsonl(p))
    return res


def _dataset_bytes(out: Path) -> dict[str, bytes]:
    """Every data file's bytes plus the manifest's shard list (the parts that must not vary)."""
    out = Path(out)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/part-*"))}


@pytest.fixture
def small_config():
    from lambdagen import LambdaConfig

    return LambdaConfig(schedule="24x8,30x9:2,16x6", max_steps=40, max_size=120, chunk_traces=8)


@pytest.fixture
def read_dataset():
    """Function: all records of a dataset directory, per split."""
    return _read_dataset


@pytest.fixture
def dataset_bytes():
    """Function: every data file's bytes of a dataset directory."""
    return _dataset_bytes
