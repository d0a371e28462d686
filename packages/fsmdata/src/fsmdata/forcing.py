"""Edge-forcing walks: rows of a batch walked through a chosen under-covered edge.

The weighted walk of :class:`~fsmdata.engine.Engine` only prefers rare edges *locally*: an edge
``(q, a)`` whose source ``q`` is reached only by particular paths stays rare however large its
weight, because walks seldom arrive at ``q``.  On unseen random patterns that left edges in 0.02%
of the samples that some 40% of them could contain (docs/benchmarks/fsmdata.md).

A forced row of a walk-made cell (A, I, ``premature``, ``illegal_step``, ``overrun``,
``dead_suffix``: kind ``k``, ``m`` walk steps) picks an edge ``(q, a)`` that some ``m``-step
walk into ``k`` contains and a position ``t`` where it fits (``q`` reachable from the start in
``t`` steps and the target reachable from ``table[q, a]`` in ``m - t - 1``), uniformly among
the fitting positions, then walks start -> ``q`` in exactly ``t`` steps (a reach-to-state
table), takes ``a``, and walks on into ``k``.  Every step stays feasible, so the row's class,
length and subtype are those of its cell and the labels stay exact.

Which edges and how many rows (:meth:`EdgeForcer.choose`): an edge's *deficit* is how far its
sample count is below :data:`FORCE_GOAL` x the median (over the live edges some walk-made cell
can contain), scaled by the batch's growth of the counts; a row that can contain some edge in
deficit is forced with probability ``min(FORCE_MAX_SHARE, total deficit / such rows)`` and given
one of those edges with probability proportional to its deficit over the number of rows that
can hold it.  So patterns without rare edges force nothing; the palettes do the fine balance.
"""

from __future__ import annotations

import numpy as np

from .feasibility import TARGETS, Feasibility
from .fsm import FSM

__all__ = ["FORCE_GOAL", "FORCE_MAX_SHARE", "FORCE_RATIO", "EdgeForcer"]

#: least / median live-edge count the palettes' damped share is steered to (0.5 + margin; generator.py)
FORCE_RATIO = 0.55
#: at most this share of a batch's walk-made rows is forced
FORCE_MAX_SHARE = 0.5
#: edges contained in fewer than this share of the median's samples are forced (rescue of rare
#: edges; the palettes balance the rest: forcing c / d of x(a|b)*y(c|d)z up to 0.55 raises y, the
#: median, as much, and the palettes then damp loops in long strings)
FORCE_GOAL = 0.3

_TO_STATE_BUDGET = 1 << 25  # (L_max + 1) x states x states cells of the reach-to-state table
_CONTAIN_BUDGET = 1 << 26  # kinds x (L_max + 1) x L_max x edges cell updates of the containable table
_CHOICE_BUDGET = 1 << 24  # rows x live edges of one batch's choice matrix


class EdgeForcer:
    """Tables and choices of edge-forced walks for one FSM and ``L_max`` (see the module docstring).

    ``ok`` is False when the tables would exceed their budgets (large FSMs or ``L_max``); the
    engine then forces nothing."""

    def __init__(self, fsm: FSM, feas: Feasibility, L_max: int) -> None:
        self.fsm, self.feas, self.T = fsm, feas, L_max
        n, S = fsm.n_states, fsm.n_symbols
        live = fsm.live_edges()
        self.edges = np.flatnonzero(live.ravel())  # live edge ids q * S + a
        E = len(self.edges)
        K = len(TARGETS)
        self.ok = (L_max + 1) * n * n <= _TO_STATE_BUDGET and K * (L_max + 1) * max(L_max, 1) * max(E, 1) <= _CONTAIN_BUDGET
        if not self.ok or E == 0:
            self.ok = False
            return
        table = fsm.table
        # to_state[r, p, q]: some string of exactly r symbols leads from p to q
        R = np.zeros((L_max + 1, n, n), dtype=bool)
        R[0] = np.eye(n, dtype=bool)
        for r in range(1, L_max + 1):
            R[r] = R[r - 1][table].any(axis=1)
        self.to_state = R
        eq, ea = self.edges // S, self.edges % S
        self.eq, self.ea = eq, ea
        self.enext = table[eq, ea]
        # fits[k, m, t, e]: edge e can be step t of an m-step walk from the start into kind k
        fw = feas.fwd[:, eq]  # (T+1, E): source reachable from the start in t steps
        rn = feas.reach[:, :, self.enext]  # (K, T+1, E): kind reachable from the edge's target in r steps
        contain = np.zeros((K, L_max + 1, E), dtype=bool)
        for m in range(1, L_max + 1):
            t = np.arange(m)
            contain[:, m] = (fw[t][None] & rn[:, m - 1 - t]).any(axis=1)
        self.contain = contain
        self._fw, self._rn = fw, rn
        # log of the number of strings through the edge at each position, so a position is drawn
        # in proportion to the strings of the cell that hold the edge there (uniform over those
        # strings, not over positions: a position reachable only through a^11 is rarely drawn)
        lf = _log_counts_from_start(fsm, L_max)  # (T+1, n)
        lr = np.stack([_log_counts_to(fsm, feas.masks[k], L_max) for k in TARGETS])  # (K, T+1, n)
        self._lf = lf[:, eq]  # (T+1, E)
        self._lr = lr[:, :, self.enext]  # (K, T+1, E)

    def choose(
        self,
        kinds: np.ndarray,
        walk_len: np.ndarray,
        eligible: np.ndarray,
        hits: np.ndarray,
        samples: int,
        ratio: float,
        max_share: float,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows to force and their edge and position: ``(rows, edge_index, t)``.

        ``kinds``/``walk_len`` are the rows' walk targets, ``eligible`` the walk-made rows,
        ``hits`` the per-sample edge counts ``(n, S)`` of the ``samples`` made so far."""
        empty = (np.zeros(0, dtype=np.int64),) * 3
        B = len(kinds)
        E = len(self.edges)
        if not self.ok or B == 0 or B * E > _CHOICE_BUDGET:
            return empty
        h = hits.ravel()[self.edges].astype(np.float64)
        coverable = self.contain.any(axis=(0, 1))
        if not coverable.any():
            return empty
        goal = ratio * max(float(np.median(h[coverable])), 1.0)  # an edge never hit yet is wanted from the start
        # counts grow with the batch: what is missing at its end, if the rows it would make anyway
        # grow every count (and the median) in proportion
        seen = int(samples)
        growth = (seen + B) / seen if seen > 0 else 1.0
        deficit = np.where(coverable, np.maximum(goal - h, 0.0), 0.0) * growth
        total = float(deficit.sum())
        if total <= 0:
            return empty
        rows = np.flatnonzero(eligible & (walk_len >= 1))
        can = self.contain[kinds[rows], walk_len[rows]] & (deficit > 0)[None, :]  # (rows, E)
        avail = can.sum(axis=0)
        has = can.any(axis=1)
        rows, can = rows[has], can[has]
        if len(rows) == 0:
            return empty
        # an edge few rows can hold gets a larger pull in each of them
        w = can * (deficit / np.maximum(avail, 1))[None, :]
        p_force = min(max_share, total / len(rows))
        pick = rng.random(len(rows)) < p_force
        rows, w = rows[pick], w[pick]
        if len(rows) == 0:
            return empty
        tot = w.sum(axis=1)
        cum = np.cumsum(w, axis=1)
        u = rng.random(len(rows)) * tot
        e = np.minimum((cum <= u[:, None]).sum(axis=1), E - 1)
        # a fitting position, uniform among them
        m = walk_len[rows]
        ts = np.arange(self.T)[None, :]
        r_left = np.clip(m[:, None] - 1 - ts, 0, self.T)
        kr = kinds[rows][:, None]
        fits = (ts < m[:, None]) & self._fw[ts, e[:, None]] & self._rn[kr, r_left, e[:, None]]
        logw = np.where(fits, self._lf[ts, e[:, None]] + self._lr[kr, r_left, e[:, None]], -np.inf)
        w = np.exp(logw - logw.max(axis=1, keepdims=True))
        cw = np.cumsum(w, axis=1)
        u = rng.random(len(rows)) * cw[:, -1]
        t = np.minimum((cw <= u[:, None]).sum(axis=1), m - 1)
        t = np.where(fits[np.arange(len(rows)), t], t, np.argmax(fits, axis=1))  # float rounding at the top end
        return rows, e, t

    def walk_to(
        self, targets: np.ndarray, steps: np.ndarray, rng: np.random.Generator, W: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Walk ``steps[i]`` symbols from the start to state ``targets[i]`` exactly, weighted
        by ``W`` (uniform over feasible symbols without it).  Returns padded ``(tokens, states)``."""
        fsm = self.fsm
        B = len(targets)
        width = int(steps.max()) if B else 0
        tokens = np.zeros((B, width), dtype=np.int32)
        states = np.zeros((B, width + 1), dtype=np.int32)
        states[:, 0] = fsm.start
        q = np.full(B, fsm.start, dtype=np.int64)
        for j in range(width):
            act = np.flatnonzero(j < steps)
            qa = q[act]
            nxt = fsm.table[qa]  # (na, S)
            ok = self.to_state[(steps[act] - j - 1)[:, None], nxt, targets[act][:, None]]
            wt = ok * (W[qa] if W is not None else 1.0)
            cum = np.cumsum(wt, axis=1)
            u = rng.random(len(act)) * cum[:, -1]
            a = (cum <= u[:, None]).sum(axis=1)
            a = np.minimum(a, fsm.n_symbols - 1 - np.argmax(ok[:, ::-1], axis=1))  # float rounding at the top
            tokens[act, j] = a
            q[act] = fsm.table[qa, a]
            states[act, j + 1] = q[act]
        return tokens, states


def _log_counts_from_start(fsm: FSM, L_max: int) -> np.ndarray:
    """``(L_max + 1, n)``: log of the number of strings of length t from the start to each state
    (-inf where none), computed with a per-step scale so long strings do not overflow."""
    n = fsm.n_states
    src = np.repeat(np.arange(n), fsm.n_symbols)
    dst = fsm.table.ravel()
    out = np.full((L_max + 1, n), -np.inf)
    cur: np.ndarray = np.zeros(n)
    cur[fsm.start] = 1.0
    scale = 0.0
    out[0, fsm.start] = 0.0
    for t in range(1, L_max + 1):
        cur = np.bincount(dst, weights=cur[src], minlength=n).astype(np.float64)
        top = cur.max()
        if top > 0:
            cur = cur / top
            scale += float(np.log(top))
        with np.errstate(divide="ignore"):
            out[t] = np.log(cur) + scale
    return out


def _log_counts_to(fsm: FSM, mask: np.ndarray, L_max: int) -> np.ndarray:
    """``(L_max + 1, n)``: log of the number of strings of length r from each state into ``mask``."""
    out = np.full((L_max + 1, fsm.n_states), -np.inf)
    cur = mask.astype(np.float64)
    scale = 0.0
    with np.errstate(divide="ignore"):
        out[0] = np.log(cur)
        for r in range(1, L_max + 1):
            cur = cur[fsm.table].sum(axis=1)
            top = cur.max()
            if top > 0:
                cur = cur / top
                scale += float(np.log(top))
            out[r] = np.log(cur) + scale
    return out
