"""Exact ``wrong_alt`` feasibility and construction by a pair (product) dynamic program.

A ``wrong_alt`` string ``s`` of length ``L`` (see :mod:`fsmdata.rejects`) has a position
``k >= L // 2`` and a symbol ``a != s[k]`` such that ``s[:k] + a + s[k+1:]`` is accepted,
the step ``s[k]`` is defined, and ``s`` is a reject of the task: it ends in the sink
(ternary) or in a live, non-accepting state with every step defined (binary).  With
``q = state after s[:k]``, ``x = q -a->``, ``y = q -s[k]->`` and ``w = s[k+1:]``, that is:
``w`` takes ``x`` into an accepting state and ``y`` into the reject set.  ``P[r, x, y]``
(some ``w`` of length ``r`` does so) is a reachability table over state pairs; from it the
lengths at which a ``wrong_alt`` exists are known exactly, and one can be built for any
such length (used when the vectorized swap search of the engine misses).
"""

from __future__ import annotations

import numpy as np

from .fsm import FSM

__all__ = ["PAIR_BUDGET", "WrongAltTables"]

#: Work limit of the pair tables: ``n_states**2 * n_symbols * L_max`` cell updates.
PAIR_BUDGET = 1 << 27


class WrongAltTables:
    """``P[r, x, y]`` for ``r < L_max`` and ``G[r, q]`` (a branch at ``q`` with ``r`` steps left exists)."""

    def __init__(self, fsm: FSM, L_max: int, task: str) -> None:
        self.fsm, self.L_max, self.task = fsm, L_max, task
        n, S = fsm.n_states, fsm.n_symbols
        acc, live = fsm.accepting, fsm.live
        rej = (live & ~acc) if task == "binary" else ~live
        R = max(L_max, 1)
        P = np.zeros((R, n, n), dtype=bool)
        P[0] = acc[:, None] & rej[None, :]
        T = fsm.table
        for r in range(1, R):
            prev = P[r - 1]
            cur = np.zeros((n, n), dtype=bool)
            for a in range(S):
                ta = T[:, a]
                cur |= prev[ta[:, None], ta[None, :]]
            P[r] = cur
        self.P = P
        # successor states of each state (distinct), split by whether they are live
        self.succ = [np.unique(T[q]) for q in range(n)]
        G = np.zeros((R, n), dtype=bool)
        for q in range(n):
            sq = self.succ[q]
            ys = sq[live[sq]]
            if len(ys) == 0 or len(sq) < 2:
                continue
            G[:, q] = P[:, sq[:, None], ys[None, :]].any(axis=(1, 2))
        self.G = G
        # fwd[t, q]: q reachable from the start in exactly t steps
        fwd = np.zeros((L_max + 1, n), dtype=bool)
        fwd[0, fsm.start] = True
        for t in range(1, L_max + 1):
            fwd[t, T[fwd[t - 1]].ravel()] = True
        self.fwd = fwd

    @staticmethod
    def fits(fsm: FSM, L_max: int) -> bool:
        """True when the tables stay within :data:`PAIR_BUDGET`."""
        return fsm.n_states**2 * fsm.n_symbols * max(L_max, 1) <= PAIR_BUDGET

    def positions(self, L: int) -> list[int]:
        """Branch positions ``k`` at which a ``wrong_alt`` of length ``L`` exists."""
        if L < 1 or L > self.L_max:
            return []
        return [k for k in range(L // 2, L) if (self.fwd[k] & self.G[L - k - 1]).any()]

    def lengths(self, lengths: range | list[int]) -> list[int]:
        """The lengths (of those given) at which a ``wrong_alt`` exists."""
        return [L for L in lengths if self.positions(L)]

    def build(self, L: int, rng: np.random.Generator) -> tuple[list[int], int] | None:
        """One ``wrong_alt`` string of length ``L`` and its branch position (None if none exists)."""
        fsm = self.fsm
        T, live = fsm.table, fsm.live
        ks = self.positions(L)
        if not ks:
            return None
        k = int(ks[int(rng.integers(len(ks)))])
        r = L - k - 1
        qs = np.flatnonzero(self.fwd[k] & self.G[r])
        q = int(qs[int(rng.integers(len(qs)))])
        # prefix: walk back from q through states reachable in the steps left
        prefix: list[int] = []
        cur = q
        for t in range(k, 0, -1):
            src, sym = np.nonzero((T == cur) & self.fwd[t - 1][:, None])
            i = int(rng.integers(len(src)))
            prefix.append(int(sym[i]))
            cur = int(src[i])
        prefix.reverse()
        row = T[q]
        pairs = [
            (a, b)
            for a in range(fsm.n_symbols)
            for b in range(fsm.n_symbols)
            if a != b and live[row[b]] and self.P[r, row[a], row[b]]
        ]
        a, b = pairs[int(rng.integers(len(pairs)))]
        x, y = int(row[a]), int(row[b])
        suffix: list[int] = []
        for left in range(r, 0, -1):
            ok = np.flatnonzero(self.P[left - 1, T[x], T[y]])
            c = int(ok[int(rng.integers(len(ok)))])
            suffix.append(c)
            x, y = int(T[x, c]), int(T[y, c])
        return prefix + [b] + suffix, k
