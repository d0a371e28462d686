"""Deterministic train/val/test split of token sequences (datacore's hash split).

A sequence's split is ``xxh64(salt + little-endian uint32 tokens) % 1000`` against the
ratio thresholds, so one string is always in one split, whatever run or machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from datacore import split_of as _split_of

from .config import GenConfig

__all__ = ["length_split_rule", "split_counts_by", "split_of", "split_of_length"]


def split_of_length(length: int, cfg: GenConfig) -> str:
    """The split of a string of ``length`` under ``cfg``'s length split (see
    :meth:`~fsmdata.GenConfig.split_bounds`)."""
    for name, (lo, hi) in cfg.split_bounds().items():
        if lo <= length <= hi:
            return name
    raise ValueError(f"length {length} outside {cfg.L_min}..{cfg.L_max}")


def length_split_rule(cfg: GenConfig, planned: dict[str, float]) -> dict[str, Any]:
    """The length split as recorded in the manifest: the rule, each split's length band, and
    each split's planned (class, length) shares (of the whole dataset) and total share."""
    bounds = cfg.split_bounds()
    per: dict[str, dict[str, float]] = {s: {} for s in bounds}
    for key, share in sorted(planned.items()):
        parts = dict(kv.split("=", 1) for kv in key.split(","))
        if "length" in parts and "class" in parts:
            per[split_of_length(int(parts["length"]), cfg)][key] = share
    return {
        "rule": "length",
        "bands": {s: list(b) for s, b in bounds.items()},
        "planned_share": {s: sum(v.values()) for s, v in per.items()},
        "planned_cells": per,
    }


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
