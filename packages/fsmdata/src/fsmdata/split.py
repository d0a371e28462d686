"""Deterministic train/val/test split of token sequences (datacore's hash split).

A sequence's split is ``xxh64(salt + little-endian uint32 tokens) % 1000`` against the
ratio thresholds, so one string is always in one split, whatever run or machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from datacore import split_of as _split_of

__all__ = ["split_counts_by", "split_of"]


def split_of(tokens: Sequence[int], ratios: Sequence[float] = (0.8, 0.1, 0.1), salt: str = "") -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a token id sequence."""
    return _split_of(list(tokens), ratios, salt)


def split_counts_by(
    records: Iterable[dict[str, Any]], field: str = "class", ratios: Sequence[float] = (0.8, 0.1, 0.1), salt: str = ""
) -> dict[str, dict[str, int]]:
    """Counts per split of each value of ``field`` (e.g. class or length): check that no
    class or length is starved in val/test.  Deterministic: depends only on the tokens."""
    out: dict[str, dict[str, int]] = {"train": {}, "val": {}, "test": {}}
    for r in records:
        s = split_of(r["tokens"], ratios, salt)
        k = str(r[field])
        out[s][k] = out[s].get(k, 0) + 1
    return out
