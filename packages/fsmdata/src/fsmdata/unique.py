"""``unique=True``: distinct strings per (class, length, subtype) cell over the whole dataset.

Every countable cell is a set of strings ``w + tail`` (a walk of ``m`` steps into a
weighted target set of :func:`~fsmdata.feasibility.target_weights`, then a tail chosen
among ``weight(end)`` options), so its exact size is known (Python ints) and its strings
can be *unranked*: rank ``r`` in ``[0, size)`` names one string.  Records are assigned to
cells by position (:meth:`~fsmdata.targets.TargetPlan.cells_at`): the first ``j`` records
hold the same cells whatever the shard size, and each record knows its occurrence index in
its cell over the whole dataset (from ``ShardTask.start``).  The ``m``-th record of a cell takes rank ``perm(m)`` of a keyed
pseudo-random permutation of ``[0, size)``, so no two records of a cell share a string,
in any shard, and a cell asked for more records than it has strings is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xxhash

from .errors import InfeasibleTargetError
from .feasibility import count_exact, overrun_symbols, target_weights
from .targets import SUB, class_stratum

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["CellSpace", "check_capacity", "repeat_warning", "unique_tokens"]

_TABLE_PERM = 1 << 16  # cells up to this size use an explicit permutation


class CellSpace:
    """The strings of one cell: size and unranking."""

    def __init__(self, eng: Engine, cls: str, L: int, sub: str) -> None:
        fsm = eng.fsm
        self.fsm = fsm
        if sub == "illegal_step":
            kind, m, tail = "ILL", L - 1, "dead"
        elif sub == "overrun":
            kind, m, tail = "OVP", L - 2, "overrun"
        elif sub == "dead_suffix":
            kind, m, tail = "R", L - 1, "any"
        elif sub == "premature" or cls == "I":
            kind, m, tail = "I", L, ""
        elif cls == "A":
            kind, m, tail = "A", L, ""
        else:
            raise InfeasibleTargetError(f"unique: cell class={cls},length={L} subtype={sub or '-'} cannot be counted exactly")
        self.m, self.tail = m, tail
        self.C = _counts(eng, kind)
        base = self.C[m][fsm.start] if m >= 0 else 0
        self.size = base * fsm.n_symbols if tail == "any" else base
        self.rows = fsm.table.tolist()
        self.dead = [np.flatnonzero(~fsm.live[fsm.table[q]]).tolist() for q in range(fsm.n_states)]
        self.over = [np.flatnonzero(row).tolist() for row in overrun_symbols(fsm)] if tail == "overrun" else []

    def unrank(self, r: int) -> list[int]:
        """The ``r``-th string of the cell (``0 <= r < size``)."""
        S = self.fsm.n_symbols
        tail_r = 0
        if self.tail == "any":
            r, tail_r = divmod(r, S)
        q = self.fsm.start
        out: list[int] = []
        for t in range(self.m, 0, -1):
            row, nxt = self.rows[q], self.C[t - 1]
            for a in range(S):
                c = nxt[row[a]]
                if r < c:
                    out.append(a)
                    q = row[a]
                    break
                r -= c
        if self.tail == "dead":
            out.append(self.dead[q][r])
        elif self.tail == "overrun":
            c = self.over[q][r]
            out += [c, c]
        elif self.tail == "any":
            out.append(tail_r)
        return out


def _counts(eng: Engine, kind: str) -> list[list[int]]:
    cache = eng.__dict__.setdefault("_exact_counts", {})
    if kind not in cache:
        cache[kind] = count_exact(eng.fsm.table, target_weights(eng.fsm)[kind], eng.cfg.L_max)
    return cache[kind]


def _spaces(eng: Engine) -> list[CellSpace]:
    cache = eng.__dict__.get("_cell_spaces")
    if cache is None:
        cache = [CellSpace(eng, c, L, s) for c, L, s in eng.plan.cells]
        eng.__dict__["_cell_spaces"] = cache
    return cache


def _cell_name(cell: tuple[str, int, str]) -> str:
    c, L, s = cell
    return class_stratum(c, L) + (f",subtype={s}" if s else "")


def check_capacity(eng: Engine, n: int) -> None:
    """Refuse (one line) when the first ``n`` records ask a cell for more strings than it has."""
    spaces = _spaces(eng)
    counts = np.bincount(eng.plan.cells_at(0, n)[0], minlength=len(spaces))
    for cell, sp, k in zip(eng.plan.cells, spaces, counts.tolist()):
        if k > sp.size:
            raise InfeasibleTargetError(
                f"unique: cell {_cell_name(cell)} asks {k} distinct strings but only {sp.size} exist; "
                "lower -n, widen the length range or the alphabet, change the class shares, or drop --unique"
            )


def repeat_warning(eng: Engine, n: int) -> str | None:
    """Without ``unique``: one line saying which cells of the first ``n`` records must repeat
    strings (more records than distinct strings), or None.  Cells that cannot be counted
    (``wrong_alt``, uniform-mode R) are skipped."""
    counts = np.bincount(eng.plan.cells_at(0, n)[0], minlength=len(eng.plan.cells))
    over = []
    for ci, (cell, k) in enumerate(zip(eng.plan.cells, counts.tolist())):
        if k <= 1 or cell[2] == "wrong_alt" or (cell[0] == "R" and not cell[2]):
            continue
        size = CellSpace(eng, *cell).size
        if k > size:
            over.append((k - size, ci, k, size))
    if not over:
        return None
    _, ci, k, size = max(over)
    return (
        f"warning: {len(over)} of {len(eng.plan.cells)} cells ask for more records than they have distinct strings "
        f"(e.g. {_cell_name(eng.plan.cells[ci])}: {k} records, {size} string(s)), so strings repeat; "
        "--unique refuses instead"
    )


def _rank(size: int, m: int, key: tuple[int, int]) -> int:
    """Position ``m`` of a keyed pseudo-random permutation of ``[0, size)``."""
    if size <= _TABLE_PERM:
        return int(np.random.default_rng(list(key)).permutation(size)[m])
    bits = max(2, (size - 1).bit_length())
    h = (bits + 1) // 2
    mask = (1 << h) - 1
    x = m
    while True:  # cycle walking: a Feistel bijection on 2h bits, repeated until inside [0, size)
        lo, hi = x & mask, x >> h
        for rnd in range(4):
            f = xxhash.xxh64_intdigest(lo.to_bytes((h + 7) // 8 + 1, "little"), seed=(key[0] * 1_000_003 + key[1]) * 8 + rnd)
            lo, hi = hi ^ (f & mask), lo
        x = (hi << h) | lo
        if x < size:
            return x


def unique_tokens(eng: Engine, start: int, count: int) -> tuple[np.ndarray, list[list[int]]]:
    """Cell index and tokens of the records at global positions ``start .. start+count-1``."""
    spaces = _spaces(eng)
    mine, occ = eng.plan.cells_at(start, count)
    out: list[list[int]] = []
    perm_cache: dict[int, np.ndarray] = {}
    for ci, m in zip(mine.tolist(), occ.tolist()):
        sp = spaces[ci]
        if m >= sp.size:
            raise InfeasibleTargetError(
                f"unique: cell {_cell_name(eng.plan.cells[ci])} asks more than its {sp.size} distinct strings"
            )
        key = (eng.cfg.unique_seed, ci)
        if sp.size <= _TABLE_PERM:
            if ci not in perm_cache:
                perm_cache[ci] = np.random.default_rng(list(key)).permutation(sp.size)
            r = int(perm_cache[ci][m])
        else:
            r = _rank(sp.size, m, key)
        out.append(sp.unrank(r))
    return mine, out


assert SUB["overrun"] > 0  # cells carry subtype names; codes are the engine's
