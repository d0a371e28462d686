"""Coverage quotas: per-edge and per-state sample counts that steer sampling to unused edges.

**Edge count** (one definition everywhere in fsmdata: quotas, ``DataReport.edge_hits``,
telemetry ``edge_coverage``, report.html and the benchmark): the number of *samples that
contain the edge* ``(state, symbol)`` at least once.  A sample that loops over an edge 30
times counts once for it, as a sample that uses it once does; a state's count is the number
of samples that visit it.  This is what "coverage" asks (how many training strings show this
transition), and it is comparable between edges that a string can use only once (a final
``e``) and loop edges (see docs/fsmdata.md, "Coverage").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["QuotaManager"]

_DENSE_CELLS = 1 << 24  # batch rows x edges up to which per-sample counting uses a dense mask


class QuotaManager:
    """Counts in how many samples each edge ``(state, symbol)`` and each state occurs.

    :meth:`edge_weight` is the inverse-sqrt frequency bonus ``1 / sqrt(1 + hits)``,
    multiplied by ``boost`` while an edge is below its ``edge_target`` (or its source state
    below ``state_target``), so rarely used edges are preferred by the generators.

    :meth:`palettes` turns the counts into per-sample weight variants that also steer
    *away* from over-covered edges (see there): with counts per sample, a sample adds one
    to every edge it contains, so balancing needs samples that avoid some common edges,
    not only local preferences for rare ones.
    """

    def __init__(
        self,
        n_states: int,
        n_symbols: int,
        *,
        edge_target: int = 0,
        state_target: int = 0,
        boost: float = 4.0,
        balance: float = 0.65,
    ) -> None:
        if boost < 1:
            raise ValueError(f"boost must be >= 1, got {boost}")
        if not 0 <= balance <= 1:
            raise ValueError(f"balance must be in [0, 1], got {balance}")
        self.n_states, self.n_symbols = n_states, n_symbols
        self.edge_target, self.state_target, self.boost = edge_target, state_target, boost
        self.balance = balance
        self.hits = np.zeros((n_states, n_symbols), dtype=np.int64)
        self.hits_state = np.zeros(n_states, dtype=np.int64)

    def edge_weight(self, state: int, token_id: int) -> float:
        """Sampling weight of edge ``(state, token_id)``: larger for less-used edges."""
        return float(self.weights()[state, token_id])

    def weights(self) -> np.ndarray:
        """All edge weights as a float64 ``(n_states, n_symbols)`` array."""
        w = 1.0 / np.sqrt(1.0 + self.hits)
        if self.edge_target > 0:
            w = np.where(self.hits < self.edge_target, w * self.boost, w)
        if self.state_target > 0:
            w = np.where((self.hits_state < self.state_target)[:, None], w * self.boost, w)
        return w

    def palettes(
        self,
        n: int,
        table: np.ndarray,
        live: np.ndarray,
        rng: np.random.Generator,
        damp: float = 1e-3,
        gain: float = 8.0,
        protect: float = 1.25,
        pull: float = 1.0,
    ) -> np.ndarray:
        """``n`` weight variants ``(n, n_states, n_symbols)``; each sample walks with one of them.

        Variant 0 is :meth:`weights`.  With ``lo`` the least count among the ``live`` edges
        and ``tau = lo / balance``, a live edge with ``hits > tau`` is *over-covered* and one
        with ``hits < tau`` is *wanted*.  An over-covered edge ``(q, a)`` may be damped only
        if every wanted edge reachable after it is also reachable from ``q`` without it
        (so avoiding it never cuts a sample off from a rare edge: ``y`` of
        ``x(a|b)*y(c|d)z`` is never damped while ``c`` / ``d`` are wanted, ``a`` and ``b``
        are).  In each variant but 0 such an edge is damped (weight x ``damp``) with
        probability ``min(1, gain * (1 - tau / hits))``; where that would damp every
        over-covered edge of a state, one of them (drawn at random) is kept, so the variant
        takes that one there.  A sample walking a variant thus avoids some common edges
        altogether, which lowers their counts; as a count falls back toward ``tau`` it is
        damped less (a proportional controller toward least / median >= ``balance``).
        ``table`` is the FSM's transition table.  Damping only reweights feasible symbols,
        so every walk still reaches its target.  FSMs whose reachability check would exceed
        ``2**22`` cells get variant 0 only.
        """
        base = self.weights()
        out = np.repeat(base[None], n, axis=0)
        h = self.hits[live]
        if n <= 1 or self.balance <= 0 or h.size == 0 or h.min() <= 0:
            return out
        tau = h.min() / self.balance
        over = live & (self.hits > tau)
        wanted = live & (self.hits < tau * protect)
        if not over.any():
            return out
        rare = live & (self.hits < tau)
        out[:, rare] *= (tau / self.hits[rare])[None, :] ** pull
        wq, wa = np.nonzero(wanted)
        m = len(wq)
        ns, S = self.hits.shape
        elig = over.copy()
        if m:
            if ns * ns * S * m > 1 << 24:
                return out
            direct = np.zeros((ns, m), dtype=bool)
            direct[wq, np.arange(m)] = True
            for q in np.flatnonzero(over.any(axis=1)).tolist():
                # R[x, j]: wanted edge j can be reached from state x without entering q again
                R = direct.copy()
                R[q] = False
                for _ in range(ns):
                    nxt = R | (R[table] & live[:, :, None]).any(axis=1)
                    nxt[q] = False
                    if np.array_equal(nxt, R):
                        break
                    R = nxt
                G = R[table[q]] & live[q][:, None]  # (S, m): wanted edges reached after (q, a)
                others = G.sum(axis=0)[None, :] - G
                lost = G & ~(direct[q][None, :] | (others > 0))
                elig[q] &= ~lost.any(axis=1)
        # One edge per state is damped, the same one in every variant: the eligible edge with the
        # fewest hits (lowest symbol on ties), with probability min(1, gain * (1 - tau / hits)).
        # The samples that avoid an edge of a state then avoid the same one (the one nearest
        # to tau), so fewer samples need to avoid any, and the state's other edges stay mixed
        # (a loop (a|b|c)* that avoids c still alternates a and b).
        p = np.where(elig, np.minimum(1.0, gain * (1.0 - tau / np.maximum(self.hits, 1))), 0.0)
        has = elig.any(axis=1)
        pick = np.where(elig, self.hits, np.iinfo(np.int64).max).argmin(axis=1)
        qs = np.flatnonzero(has)
        D = np.zeros((n - 1, *p.shape), dtype=bool)  # (n-1, states, symbols): damped in that variant
        D[:, qs, pick[qs]] = rng.random((n - 1, len(qs))) < p[qs, pick[qs]][None]
        out[1:][D] *= damp
        return out

    def update_path(self, states: Sequence[int], tokens: Sequence[int]) -> None:
        """Count one sample: ``states`` has ``len(tokens) + 1`` entries (start included).

        Each distinct edge and state of the sample is counted once."""
        if len(states) != len(tokens) + 1:
            raise ValueError(f"states must be one longer than tokens ({len(states)} vs {len(tokens)})")
        for q, a in set(zip(states[:-1], tokens)):
            self.hits[q, a] += 1
        for q in set(states):
            self.hits_state[q] += 1

    def update_batch(self, states: np.ndarray, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Count a batch: ``states`` ``(B, W+1)``, ``tokens`` ``(B, W)``, row ``i`` valid up to ``lengths[i]``.

        Each distinct edge and state of a row is counted once for that row."""
        if len(lengths) == 0:
            return
        e, st = self.count_rows(states, tokens, lengths)
        self.hits += e
        self.hits_state += st

    def count_rows(self, states: np.ndarray, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How many rows of a batch contain each edge ``(n_states, n_symbols)`` and visit each state
        (``(n_states,)``), without counting them (:meth:`update_batch` adds these)."""
        B = len(lengths)
        width = tokens.shape[1]
        nE, nS = self.hits.size, self.n_states
        pos = np.arange(width + 1)[None, :]
        # padded positions point at one extra dummy column, so no boolean compaction is needed
        st = np.where(pos <= lengths[:, None], states[:, : width + 1], nS)
        if width:
            ed = np.where(pos[:, :width] < lengths[:, None], states[:, :width].astype(np.int64) * self.n_symbols + tokens, nE)
        else:
            ed = np.full((B, 0), nE, dtype=np.int64)
        return self._per_row(ed, nE).reshape(self.hits.shape), self._per_row(st, nS)

    @staticmethod
    def _per_row(keys: np.ndarray, size: int) -> np.ndarray:
        """How many rows of ``keys`` ``(B, W)`` contain each key in ``[0, size)`` (``size`` = padding)."""
        B = keys.shape[0]
        if B * (size + 1) <= _DENSE_CELLS:
            m = np.zeros((B, size + 1), dtype=bool)
            m.reshape(-1)[(np.arange(B, dtype=np.int64) * (size + 1))[:, None] + keys] = True  # flat: faster than 2-D
            return np.count_nonzero(m[:, :size], axis=0)
        flat = (np.arange(B, dtype=np.int64)[:, None] * (size + 1) + keys).ravel()
        u = np.unique(flat) % (size + 1)
        return np.bincount(u[u < size], minlength=size)

    def summary(self, mask: np.ndarray | None = None) -> dict[str, Any]:
        """Coverage of the edges in ``mask`` (default all): hit share, min/median/max, targets met."""
        h = self.hits[mask] if mask is not None else self.hits.ravel()
        if h.size == 0:
            return {"edges": 0}
        return {
            "edges": int(h.size),
            "edges_hit": int((h > 0).sum()),
            "min": int(h.min()),
            "median": float(np.median(h)),
            "max": int(h.max()),
            "below_edge_target": int((h < self.edge_target).sum()),
            "states_below_target": int((self.hits_state < self.state_target).sum()),
        }
