"""Generation targets: which (class, length, reject subtype) cells an FSM can fill, and how many.

:class:`TargetPlan` validates a :class:`~fsmdata.config.GenConfig` against an FSM (impossible
requests fail here, before any sample is made) and allocates class x length x subtype
explicitly:

* A and I: an equal share for every length the class can have;
* R: a matrix over (length, subtype) restricted to the cells that exist (a subtype is
  exact per length: :attr:`TargetPlan.sub_lengths`), fitted to both marginals (an even
  spread over R's lengths and the reject mix) by iterative proportional fitting.  When both
  cannot hold, ``mix_priority`` decides (``exact``: refuse; ``subtype`` / ``length``: that
  marginal is exact, the other bends) and the residual per stratum is kept in
  :attr:`TargetPlan.residual`.  Nothing falls back to another subtype.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .config import GenConfig
from .errors import EmptyLanguageError, InfeasibleTargetError
from .feasibility import Feasibility
from .fsm import CLASS_NAMES, FSM
from .rejects import SUBTYPE_NAMES

__all__ = ["BLOCK", "SUB", "TargetPlan", "class_stratum", "subtype_stratum", "webster_sequence"]

SUB = {s: i + 1 for i, s in enumerate(SUBTYPE_NAMES)}  # subtype codes; 0 = not a reject
_MIX_TOL = 1e-3  # largest marginal residual (share of R) that counts as exact
#: Period of the position -> cell sequences (see TargetPlan.cells_at).
BLOCK = 1 << 14


def webster_sequence(shares: np.ndarray, n: int, phase: float | np.ndarray = 0.5) -> np.ndarray:
    """Index of each of ``n`` positions under Webster's (Sainte-Lague) divisor method: the
    ``k``-th occurrence of item ``i`` sits at time ``(k + phase[i]) / shares[i]`` (``phase``
    0.5: Webster); positions take items in time order (ties by index).  Every prefix is
    within one of its share per item."""
    ids, times = [], []
    ph = np.broadcast_to(np.asarray(phase, dtype=np.float64), (len(shares),))
    for i, sh in enumerate(np.asarray(shares, dtype=np.float64).tolist()):
        if sh <= 1e-15:
            continue
        k = np.arange(int(np.ceil(n * sh)) + 2)
        ids.append(np.full(len(k), i, dtype=np.int64))
        times.append((k + ph[i]) / sh)
    if not ids:
        return np.zeros(0, dtype=np.int64)
    idv, tv = np.concatenate(ids), np.concatenate(times)
    order = np.lexsort((idv, tv))
    return idv[order[:n]]


def class_stratum(c: str, L: int) -> str:
    """Stratum name of a (class, length) cell, as observed in telemetry."""
    return f"class={c},length={L}"


def subtype_stratum(s: str) -> str:
    """Stratum name of a reject subtype."""
    return f"subtype={s}"


def _ipf(support: np.ndarray, rows: np.ndarray, cols: np.ndarray, last: str) -> np.ndarray:
    """A nonnegative matrix on ``support`` whose row / column sums approach ``rows`` / ``cols``;
    the ``last`` marginal (``"rows"`` or ``"cols"``) is met exactly.

    Iterative proportional fitting converges slowly (~1/iterations) when the only fitting
    matrices have zeros inside the support, so a second pass drops the cells the first
    pass drives towards 0 and fits again on what is left (fast when a solution is there)."""
    x = _ipf_pass(support, rows, cols, last)
    pruned = support & (x > 1e-3 * x.max())
    if pruned.any(axis=1)[rows > 0].all() and pruned.any(axis=0)[cols > 0].all():
        y = _ipf_pass(pruned, rows, cols, last)
        if _miss(y, rows, cols) < _miss(x, rows, cols):
            return y
    return x


def _miss(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    return float(np.abs(x.sum(axis=1) - rows).max() + np.abs(x.sum(axis=0) - cols).max())


def _ipf_pass(support: np.ndarray, rows: np.ndarray, cols: np.ndarray, last: str, iters: int = 2000) -> np.ndarray:
    x = support.astype(np.float64)
    for _ in range(iters):
        rs = x.sum(axis=1)
        x *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = x.sum(axis=0)
        x *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        if np.abs(x.sum(axis=1) - rows).max() < 1e-12:
            break
    if last == "rows":
        rs = x.sum(axis=1)
        x *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
    return x


def _spread(k: int) -> np.ndarray:
    """``k`` phases in (0.05, 0.95), a golden-ratio (low-discrepancy) sequence over the index."""
    return 0.05 + 0.9 * ((np.arange(k) * 0.6180339887498949) % 1.0)


class TargetPlan:
    """Which (class, length, subtype) cells an FSM can fill, and the share of each.

    ``wrong_alt_lengths``: the lengths at which a ``wrong_alt`` exists (exact from the pair
    tables of :mod:`fsmdata.pairs`, or found by a probe for FSMs too large for them; the
    engine passes them).  Raises :class:`InfeasibleTargetError` /
    :class:`EmptyLanguageError` when the config asks for something no string can be.

    Attributes: ``cells`` (``(class, length, subtype)``), ``shares`` (summing to 1),
    ``class_lengths``, ``sub_lengths``, ``subtype_weights`` (the mix over R),
    ``requested`` / ``planned`` (share of the run per stratum, see :func:`class_stratum`,
    :func:`subtype_stratum`) and ``residual`` (planned - requested, strata that differ).
    """

    def __init__(self, fsm: FSM, cfg: GenConfig, feas: Feasibility, wrong_alt_lengths: Iterable[int] | None = None) -> None:
        if fsm.is_empty:
            raise EmptyLanguageError(f"the FSM accepts no string (pattern {fsm.pattern!r}); nothing to generate")
        self.fsm, self.cfg, self.feas = fsm, cfg, feas
        lengths = list(range(cfg.L_min, cfg.L_max + 1))
        crafted_ok = cfg.mode == "coverage" and not cfg.unique
        sf: dict[str, list[int]] = {
            "illegal_step": [L for L in lengths if L >= 1 and feas.start_feasible("ILL", L - 1)],
            "overrun": [L for L in lengths if L >= 2 and feas.start_feasible("OVP", L - 2)],
            "premature": [L for L in lengths if cfg.task == "binary" and feas.start_feasible("I", L)],
            "wrong_alt": sorted(set(wrong_alt_lengths or ()) & set(lengths)) if crafted_ok else [],
            "dead_suffix": [L for L in lengths if L >= 1 and feas.start_feasible("R", L - 1)],
        }
        self.sub_lengths = sf
        valid = cfg.valid_subtypes()
        explicit = cfg.reject_mix is not None
        cw = cfg.class_weights()
        # uniform mode without an explicit mix samples R whole (labelled by shape)
        whole_r = cfg.mode == "uniform" and not explicit and not cfg.unique
        if explicit:
            weights = {s: float(cfg.reject_mix.get(s, 0.0)) for s in valid}  # type: ignore[union-attr]
            for s, w in weights.items():
                if w > 0 and not sf[s] and cw.get("R", 0) > 0:
                    raise InfeasibleTargetError(self._why_no_subtype(s))
        else:
            found = [s for s in valid if s != "dead_suffix" and sf[s]]
            if not found and sf["dead_suffix"]:
                found = ["dead_suffix"]
            weights = {s: (1.0 / len(found) if s in found else 0.0) for s in valid}
        self.subtype_weights = weights
        subs = [s for s in valid if weights[s] > 0]
        reject_kind = "NA" if cfg.task == "binary" else "R"
        r_lengths = (
            [L for L in lengths if feas.start_feasible(reject_kind, L)] if whole_r else sorted({L for s in subs for L in sf[s]})
        )
        self.class_lengths = {
            "A": [L for L in lengths if feas.start_feasible("A", L)],
            "I": [L for L in lengths if cfg.task == "ternary" and feas.start_feasible("I", L)],
            "R": r_lengths,
        }
        if cfg.p_class is None:
            # default mix: equal shares over the classes this FSM can produce (A must exist)
            possible = [c for c in cw if self.class_lengths[c] or c == "A"]
            cw = {c: (1.0 / len(possible) if c in possible else 0.0) for c in cw}
        for c, p in cw.items():
            if p > 0 and not self.class_lengths[c]:
                raise InfeasibleTargetError(self._why_infeasible(c))
        self.class_weights = cw
        cells: list[tuple[str, int, str]] = []
        shares: list[float] = []
        requested: dict[str, float] = {}
        planned: dict[str, float] = {}
        for c, p in cw.items():
            Ls = self.class_lengths[c]
            if p <= 0:
                continue
            for L in Ls:
                requested[class_stratum(c, L)] = p / len(Ls)
            if c != "R" or whole_r:
                for L in Ls:
                    cells.append((c, L, ""))
                    shares.append(p / len(Ls))
                continue
            for s in subs:
                requested[subtype_stratum(s)] = p * weights[s]
            support = np.array([[L in sf[s] for s in subs] for L in Ls], dtype=bool)
            rows = np.full(len(Ls), 1.0 / len(Ls))
            cols = np.array([weights[s] for s in subs])
            prio = cfg.priority()
            x = _ipf(support, rows, cols, "cols" if prio == "subtype" else "rows")
            if prio == "exact":
                short = cols - x.sum(axis=0)
                if short.max() > _MIX_TOL:
                    j = int(np.argmax(short))
                    raise InfeasibleTargetError(
                        f"reject_mix: {subs[j]} asked {cols[j]:.1%} of R but at most {x.sum(axis=0)[j]:.1%} fits an even "
                        f"spread of R over its lengths ({subs[j]} exists at length(s) {_ranges(sf[subs[j]])}, R at "
                        f"{_ranges(Ls)}); set mix_priority (--mix-priority) to 'subtype' (R lengths bend) or "
                        "'length' (subtype shares bend)"
                    )
            for i, L in enumerate(Ls):
                for j, s in enumerate(subs):
                    if x[i, j] > 1e-12:  # IPF leaves ~0 where a cell is driven out
                        cells.append((c, L, s))
                        shares.append(p * x[i, j])
        tot = float(np.sum(shares))
        self.cells = cells
        self.shares = np.array(shares) / tot
        for (c, L, s), sh in zip(cells, self.shares.tolist()):
            k = class_stratum(c, L)
            planned[k] = planned.get(k, 0.0) + sh
            if s:
                planned[subtype_stratum(s)] = planned.get(subtype_stratum(s), 0.0) + sh
        self.requested = requested
        self.planned = planned
        self.residual = {
            k: planned.get(k, 0.0) - requested.get(k, 0.0)
            for k in sorted(set(planned) | set(requested))
            if abs(planned.get(k, 0.0) - requested.get(k, 0.0)) > 1e-9
        }

    def _why_no_subtype(self, s: str) -> str:
        cfg = self.cfg
        rng = f"length {cfg.L_min}..{cfg.L_max}"
        if s == "wrong_alt" and cfg.unique:
            return "reject_mix: wrong_alt strings cannot be counted exactly, so unique=True cannot draw them; set wrong_alt=0"
        if s == "wrong_alt" and cfg.mode == "uniform":
            return "reject_mix: wrong_alt is crafted, not sampled uniformly; set wrong_alt=0 or use mode=coverage"
        return f"reject_mix: this FSM has no {s} reject of {rng}; set {s}=0 (or widen the length range / the alphabet)"

    def _why_infeasible(self, c: str) -> str:
        cfg, fsm = self.cfg, self.fsm
        rng = f"length {cfg.L_min}..{cfg.L_max}"
        if c == "A":
            short = fsm.shortest_accepted_length()
            hint = (
                f"the shortest accepted string has length {short}; raise L_max to at least {short}"
                if short is not None and short > cfg.L_max
                else "change the length range"
            )
            return f"p_class: no accepted (A) string has {rng}; {hint}, or set A=0"
        if c == "I":
            return f"p_class: no string of {rng} stops short of acceptance with acceptance still reachable (class I); change the range or set I=0"
        return (
            f"p_class: no reject (R) string of {rng} of the requested subtypes exists over this alphabet; "
            "give a larger alphabet, another reject_mix, or set R=0"
        )

    @staticmethod
    def _round(exact: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Integers summing to ``n``: floors plus the remainder drawn by fractional part."""
        counts = np.floor(exact + 1e-9).astype(np.int64)
        rem = n - int(counts.sum())
        if rem > 0:
            frac = np.maximum(exact - counts, 0)
            p = frac / frac.sum() if frac.sum() > 0 else np.full(len(frac), 1 / len(frac))
            counts[rng.choice(len(frac), size=rem, replace=False, p=p)] += 1
        return counts

    def cell_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell: class id, length, subtype code."""
        cls = np.array([CLASS_NAMES.index(c) for c, _, _ in self.cells], dtype=np.int8)
        lens = np.array([L for _, L, _ in self.cells], dtype=np.int64)
        subs = np.array([SUB.get(s, 0) for _, _, s in self.cells], dtype=np.int8)
        return cls, lens, subs

    def allocate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stratified targets for ``n`` samples: ``(class_ids, lengths, subtype_codes)``, shuffled.

        Each group gets ``floor(n * share)`` samples and the remainder goes to groups drawn
        by their fractional parts (unbiased across shards); groups are then split among
        their cells the same way.  Groups are the (class, length) cells, except R with
        ``mix_priority="subtype"``: there the subtypes are rounded first, so the winning
        marginal is within one sample of its share.
        """
        by_sub = self.cfg.priority() == "subtype"

        def group(cell: tuple[str, int, str]) -> tuple[str, int | str]:
            c, L, s = cell
            return (c, s) if by_sub and s else (c, L)

        keys = list(dict.fromkeys(group(cell) for cell in self.cells))
        cell_share = {k: 0.0 for k in keys}
        for cell, sh in zip(self.cells, self.shares):
            cell_share[group(cell)] += sh
        cell_counts = self._round(n * np.array([cell_share[k] for k in keys]), n, rng)
        counts = np.zeros(len(self.cells), dtype=np.int64)

        # Split each group among its cells by error diffusion over the other marginal (a
        # running carry per subtype, or per length under subtype priority), groups in random
        # order: both marginals stay within about one sample of exact, not only the groups.
        def other(cell: tuple[str, int, str]) -> tuple[str, int | str]:
            c, L, s = cell
            return (c, L) if by_sub and s else (c, s)

        carry: dict[tuple[str, int | str], float] = {}
        members = {k: [i for i, cell in enumerate(self.cells) if group(cell) == k] for k in keys}
        for gi in rng.permutation(len(keys)).tolist():
            k, m = keys[gi], int(cell_counts[gi])
            idx = members[k]
            t = m * self.shares[idx] / self.shares[idx].sum()
            want = np.array([carry.get(other(self.cells[i]), 0.0) for i in idx]) + t
            got = np.where(t > 0, np.maximum(np.floor(want + 1e-9), 0), 0).astype(np.int64)
            got = np.minimum(got, m)
            while got.sum() > m:
                j = int(np.argmin(np.where(got > 0, want - got, np.inf)))
                got[j] -= 1
            while got.sum() < m:
                j = int(np.argmax(np.where(t > 0, want - got, -np.inf)))
                got[j] += 1
            counts[idx] = got
            for i, w, g in zip(idx, want.tolist(), got.tolist()):
                carry[other(self.cells[i])] = w - g
        c_cls, c_len, c_sub = self.cell_codes()
        cls, lens, subs = np.repeat(c_cls, counts), np.repeat(c_len, counts), np.repeat(c_sub, counts)
        perm = rng.permutation(n)
        return cls[perm], lens[perm], subs[perm]

    def _position_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block tables of :meth:`cells_at` (built once): the cell of each block position,
        each cell's count per block and each position's rank among its cell's."""
        cached = self.__dict__.get("_pos_tables")
        if cached is not None:
            return cached
        by_sub = self.cfg.priority() == "subtype"

        def group(cell: tuple[str, int, str]) -> tuple[str, int | str]:
            c, L, s = cell
            return (c, s) if by_sub and s else (c, L)

        def other(cell: tuple[str, int, str]) -> tuple[str, int | str]:
            c, L, s = cell
            return (c, L) if by_sub and s else (c, s)

        keys = list(dict.fromkeys(group(cell) for cell in self.cells))
        members = [[i for i, cell in enumerate(self.cells) if group(cell) == k] for k in keys]
        g_share = np.array([self.shares[m].sum() for m in members])
        g_seq = webster_sequence(g_share, BLOCK, _spread(len(keys)))
        okeys = list(dict.fromkeys(other(cell) for cell in self.cells))
        o_of = [okeys.index(other(cell)) for cell in self.cells]
        share = self.shares.tolist()
        o_share = [0.0] * len(okeys)
        for i, sh in enumerate(share):
            o_share[o_of[i]] += sh
        tie = _spread(len(self.cells)).tolist()
        cnt = [0] * len(self.cells)
        o_cnt = [0] * len(okeys)
        b_cells = np.empty(BLOCK, dtype=np.int64)
        # within its group a position takes the cell furthest behind its share, counting its
        # own deficit and its other-marginal stratum's (error diffusion across groups), so
        # both marginals stay close in every prefix
        for r, gi in enumerate(g_seq.tolist()):
            cands = members[gi]
            if len(cands) == 1:
                best = cands[0]
            else:
                t = r + 1
                best = max(cands, key=lambda i: (t * share[i] - cnt[i]) + (t * o_share[o_of[i]] - o_cnt[o_of[i]]) + 1e-6 * tie[i])
            b_cells[r] = best
            cnt[best] += 1
            o_cnt[o_of[best]] += 1
        b_cnt = np.bincount(b_cells, minlength=len(self.cells))
        b_rank = np.zeros(BLOCK, dtype=np.int64)
        order = np.argsort(b_cells, kind="stable")
        starts = np.concatenate([[0], np.cumsum(b_cnt)[:-1]])
        b_rank[order] = np.arange(BLOCK) - np.repeat(starts, b_cnt)
        out = (b_cells, b_cnt, b_rank)
        self.__dict__["_pos_tables"] = out
        return out

    def cells_at(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Cell index and occurrence index (within the cell, over the whole dataset) of the
        records at global positions ``start .. start + count - 1``.

        Positions go to groups (the (class, length) cells, or subtypes first under
        ``mix_priority="subtype"``) by a Webster (Sainte-Lague) sequence with golden-ratio
        phases, and within a group to the cell furthest behind (its own share and its
        other-marginal stratum's): every prefix of the dataset is within about one record of
        its share per group and close per stratum, whatever the shard size, and a shard
        computes its cells from its position alone.  The sequence repeats every
        :data:`BLOCK` positions."""
        b_cells, b_cnt, b_rank = self._position_tables()
        pos = np.arange(start, start + count, dtype=np.int64)
        blk, r = pos // BLOCK, pos % BLOCK
        cells = b_cells[r]
        return cells, blk * b_cnt[cells] + b_rank[r]

    def allocate_positions(self, start: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets ``(class_ids, lengths, subtype_codes)`` of global positions ``start ..
        start + count - 1`` (see :meth:`cells_at`), in shuffled order."""
        cells, _ = self.cells_at(start, count)
        cells = cells[rng.permutation(count)]
        c_cls, c_len, c_sub = self.cell_codes()
        return c_cls[cells], c_len[cells], c_sub[cells]

    def sample_target(self, rng: np.random.Generator) -> tuple[str, int, str]:
        """One target ``(class, length, subtype)`` drawn independently by the cell shares."""
        i = int(rng.choice(len(self.cells), p=self.shares))
        return self.cells[i]


def _ranges(Ls: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1..3, 7"``."""
    out: list[str] = []
    i = 0
    while i < len(Ls):
        j = i
        while j + 1 < len(Ls) and Ls[j + 1] == Ls[j] + 1:
            j += 1
        out.append(str(Ls[i]) if i == j else f"{Ls[i]}..{Ls[j]}")
        i = j + 1
    return ", ".join(out) or "none"
