"""Shard seeds derived from the run seed and the shard index alone.

``shard_seed(run_seed, index) = xxh64(b"datacore.shard" + le_u64(run_seed) + le_u64(index), seed=0)``

Because the seed depends on nothing else (not the worker count, not the executor, not
the order shards finish in), a dataset is byte-identical however it is executed.  The
formula is fixed and documented so a non-Python core (lambdagen's Rust) can reproduce it.
"""

from __future__ import annotations

import struct

import xxhash

_DOMAIN = b"datacore.shard"
_MASK64 = (1 << 64) - 1


def shard_seed(run_seed: int, index: int) -> int:
    """Return the 64-bit seed of shard ``index`` of a run seeded with ``run_seed``."""
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    data = _DOMAIN + struct.pack("<QQ", run_seed & _MASK64, index)
    return xxhash.xxh64_intdigest(data, seed=0)
