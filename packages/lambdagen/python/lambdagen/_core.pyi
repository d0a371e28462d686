"""Type stub of the Rust extension ``lambdagen._core`` (checked against the built module by mypy's stubtest)."""

import os
from collections.abc import Sequence
from typing import final

__all__ = [
    "canonical",
    "describe",
    "reduce_step",
    "normalize",
    "trace",
    "trace_many",
    "reduce_steps_total",
    "count_terms",
    "max_feasible_size",
    "sample_terms",
    "infeasible_cells",
    "permuted_terms",
    "seed_cycles",
    "split_bucket",
    "statuses",
    "beta_reducts",
    "node_place",
    "cell_counts",
    "strategies",
    "GenSpec",
]

@final
class GenSpec:
    """A generation config, built once and reused for every shard."""

    def __new__(
        cls,
        cells: Sequence[tuple[int, int, float]],
        max_steps: int,
        max_size: int,
        max_examples_per_trace: int,
        redex_only: bool,
        whole_trace: bool,
        chunk_traces: int,
        quotas: Sequence[tuple[int, int, float]],
        zstd_level: int,
        size_quotas: Sequence[tuple[int, int, float]] = ...,
        depth_quotas: Sequence[tuple[int, int, float]] = ...,
        named: bool = False,
        tokens: bool = False,
        strategy: str = "normal",
        split_by: str = "",
        split_at: tuple[int, int] = ...,
        curriculum: bool = False,
    ) -> GenSpec: ...
    def write_shard(
        self,
        seed: int,
        count: int,
        paths: Sequence[str | os.PathLike[str]],
        compress: str | None,
        t1: int,
        t2: int,
        salt: bytes,
        threads: int = 0,
        shard_index: int = 0,
        num_shards: int = 0,
        run_seed: int = 0,
        start: int = 0,
        total: int = 0,
    ) -> tuple[list[int], str]: ...
    def shard_lines(
        self,
        seed: int,
        count: int,
        t1: int,
        t2: int,
        salt: bytes,
        threads: int = 0,
        shard_index: int = 0,
        num_shards: int = 0,
        run_seed: int = 0,
        start: int = 0,
        total: int = 0,
    ) -> tuple[bytes, list[int], list[int], list[str], str]: ...

def canonical(t: str) -> str: ...
def describe(t: str) -> tuple[int, int, str, int | None]: ...
def reduce_step(t: str) -> tuple[str, int] | None: ...
def normalize(t: str, max_steps: int, max_size: int) -> tuple[str, int, str]: ...
def strategies() -> list[str]: ...
def trace(t: str, max_steps: int, max_size: int, strategy: str = "normal") -> tuple[list[str], list[int], str]: ...
def trace_many(
    terms: Sequence[str], max_steps: int, max_size: int, strategy: str = "normal"
) -> list[tuple[str, int, str, list[int]]]: ...
def reduce_steps_total(terms: Sequence[str], max_steps: int, max_size: int) -> int: ...
def count_terms(size: int, depth: int) -> str: ...
def max_feasible_size(depth: int, limit: int) -> int: ...
def sample_terms(size: int, depth: int, n: int, seed: int) -> list[str]: ...
def permuted_terms(size: int, depth: int, keys: Sequence[int], perm_key: int) -> list[str] | None: ...
def infeasible_cells(cells: Sequence[tuple[int, int]]) -> list[str]: ...
def seed_cycles() -> list[tuple[int, int]]: ...
def split_bucket(key: bytes, salt: bytes) -> int: ...
def beta_reducts(t: str) -> list[tuple[int, str]]: ...
def node_place(t: str, pos: int) -> tuple[int, int]: ...
def cell_counts(cells: Sequence[tuple[int, int, float]], start: int, count: int) -> list[int]: ...
def statuses() -> list[str]: ...
