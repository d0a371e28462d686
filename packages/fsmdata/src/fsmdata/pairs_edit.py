"""Minimal pairs: strings at an exact edit distance ``k`` from the language, sampled uniformly,
each paired with a nearest accepted string; and single-edit perturbations.

The edit distance of a string ``u`` to the language is ``min lev(u, w)`` over accepted ``w``
(insertions, deletions, substitutions, each cost 1).  After reading a prefix of ``u`` the
*profile* ``D[q]`` (capped at ``k + 1``) is the fewest edits turning it into some string that
leads from the start to state ``q``; it is updated symbol by symbol (match / substitute, delete,
then insertions closed by a unit-cost relaxation).  Profiles are finite, so the strings at
distance exactly ``k`` form a regular language: :func:`edit_distance_fsm` builds its DFA
(reachable profiles, minimized), and uniform sampling per length uses the counting DP of the
engine.  :func:`nearest_accepted` recovers a witness by a 0-1 BFS over (position, state).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import GenConfig
from .errors import FsmError
from .fsm import FSM
from .generator import generate_corpus
from .minimize import canonical_fsm, minimize_table

__all__ = ["MAX_PROFILES", "edit_distance", "edit_distance_fsm", "minimal_pairs", "nearest_accepted", "perturb"]

#: Largest number of distance profiles (DFA states) :func:`edit_distance_fsm` builds.
MAX_PROFILES = 200_000


def _closure(D: list[int], rows: list[list[int]], cap: int) -> list[int]:
    """Relax insertions: ``D[t] <= D[q] + 1`` for every edge ``q -> t`` (unit costs, BFS order)."""
    D = list(D)
    order = sorted(range(len(D)), key=D.__getitem__)
    dq = deque(q for q in order if D[q] < cap)
    while dq:
        q = dq.popleft()
        nd = D[q] + 1
        if nd >= cap:
            continue
        for t in rows[q]:
            if nd < D[t]:
                D[t] = nd
                dq.append(t)
    return D


def _step(D: list[int], c: int, rows: list[list[int]], cap: int) -> list[int]:
    n = len(D)
    out = [min(D[q] + 1, cap) for q in range(n)]  # delete c
    for q in range(n):
        dq = D[q]
        if dq >= cap:
            continue
        for a, t in enumerate(rows[q]):
            v = dq + (a != c)
            if v < out[t]:
                out[t] = v
    return _closure(out, rows, cap)


def edit_distance(fsm: FSM, tokens: Sequence[int], cap: int | None = None) -> int:
    """Edit distance from ``tokens`` (symbol ids) to the FSM's language (capped at ``cap``)."""
    rows = fsm.table.tolist()
    big = cap if cap is not None else len(tokens) + fsm.n_states + 1
    D = [big] * fsm.n_states
    D[fsm.start] = 0
    D = _closure(D, rows, big)
    for c in tokens:
        D = _step(D, int(c), rows, big)
    return min((D[q] for q in range(fsm.n_states) if fsm.accepting[q]), default=big)


def edit_distance_fsm(fsm: FSM, k: int) -> FSM:
    """The DFA of the strings (over ``fsm.alphabet``) at edit distance exactly ``k >= 1``."""
    if not isinstance(k, int) or k < 1:
        raise FsmError(f"edit distance k: must be an integer >= 1, got {k!r}")
    if fsm.is_empty:
        raise FsmError("edit distance: the FSM accepts no string, so no string has a distance to it")
    rows = fsm.table.tolist()
    cap = k + 1
    acc = [q for q in range(fsm.n_states) if fsm.accepting[q]]
    D0 = [cap] * fsm.n_states
    D0[fsm.start] = 0
    start = tuple(_closure(D0, rows, cap))
    ids = {start: 0}
    order = [start]
    table: list[list[int]] = []
    i = 0
    while i < len(order):
        D = list(order[i])
        i += 1
        row = []
        for c in range(fsm.n_symbols):
            nxt = tuple(_step(D, c, rows, cap))
            j = ids.get(nxt)
            if j is None:
                if len(order) >= MAX_PROFILES:
                    raise FsmError(f"edit distance {k}: more than the limit of {MAX_PROFILES:,} distance profiles; lower k")
                j = ids[nxt] = len(order)
                order.append(nxt)
            row.append(j)
        table.append(row)
    accepting = np.array([min(P[q] for q in acc) == k for P in order], dtype=bool)
    t, a, s = canonical_fsm(*minimize_table(np.array(table, dtype=np.int64), accepting, 0))
    return FSM(fsm.alphabet, t, a, s, kind=fsm.kind, pattern=f"edit distance {k} from ({fsm.pattern})")


def nearest_accepted(fsm: FSM, tokens: Sequence[int]) -> tuple[list[int], int]:
    """A nearest accepted string (symbol ids) and its edit distance, by a 0-1 BFS over
    (position in ``tokens``, state)."""
    toks = [int(c) for c in tokens]
    L, n = len(toks), fsm.n_states
    rows = fsm.table.tolist()
    INF = 1 << 30
    dist = [[INF] * n for _ in range(L + 1)]
    back: list[list[tuple[int, int, int] | None]] = [[None] * n for _ in range(L + 1)]
    dist[0][fsm.start] = 0
    dq: deque[tuple[int, int]] = deque([(0, fsm.start)])
    while dq:
        i, q = dq.popleft()
        d = dist[i][q]
        moves = []
        for a, t in enumerate(rows[q]):
            moves.append((i, t, 1, a))  # insert a
            if i < L:
                moves.append((i + 1, t, int(a != toks[i]), a))  # match / substitute
        if i < L:
            moves.append((i + 1, q, 1, -1))  # delete toks[i]
        for j, t, w, a in moves:
            if d + w < dist[j][t]:
                dist[j][t] = d + w
                back[j][t] = (i, q, a)
                (dq.appendleft if w == 0 else dq.append)((j, t))
    best = min((q for q in range(n) if fsm.accepting[q]), key=lambda q: dist[L][q], default=None)
    if best is None or dist[L][best] >= INF:
        raise FsmError("nearest accepted string: the FSM accepts no string")
    out: list[int] = []
    i, q = L, best
    while back[i][q] is not None:
        pi, pq, a = back[i][q]  # type: ignore[misc]
        if a >= 0:
            out.append(a)
        i, q = pi, pq
    return out[::-1], dist[L][best]


def perturb(fsm: FSM, tokens: Sequence[int], kind: str, rng: np.random.Generator) -> tuple[list[int], int]:
    """One random ``insertion`` / ``deletion`` / ``substitution`` (by another symbol) of
    ``tokens``; returns the new tokens and the edit position."""
    toks = [int(c) for c in tokens]
    S = fsm.n_symbols
    if kind == "insertion":
        i = int(rng.integers(len(toks) + 1))
        return toks[:i] + [int(rng.integers(S))] + toks[i:], i
    if kind == "deletion":
        if not toks:
            raise FsmError("perturb: cannot delete from an empty string")
        i = int(rng.integers(len(toks)))
        return toks[:i] + toks[i + 1 :], i
    if kind == "substitution":
        if not toks or S < 2:
            raise FsmError("perturb: substitution needs a non-empty string and two symbols")
        i = int(rng.integers(len(toks)))
        b = int(rng.integers(S - 1))
        b += b >= toks[i]
        return toks[:i] + [b] + toks[i + 1 :], i
    raise FsmError(f"perturb: kind must be insertion, deletion or substitution, got {kind!r}")


def minimal_pairs(fsm: FSM, k: int, n: int, L_min: int = 1, L_max: int = 16, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` negatives at edit distance exactly ``k`` from the language, each with a nearest
    accepted string.  Lengths are spread evenly over those where such strings exist, and each
    string of a length is equally likely (uniform mode over :func:`edit_distance_fsm`).

    Records: ``text``, ``tokens``, ``length``, ``distance`` (= ``k``), ``nearest_text``,
    ``nearest_tokens``."""
    near = edit_distance_fsm(fsm, k)
    cfg = GenConfig(L_min=L_min, L_max=L_max, mode="uniform", p_class={"A": 1})
    corpus = generate_corpus(near, cfg, n, seed=seed)
    sep = " " if fsm.kind == "token" else ""
    out = []
    for toks in corpus.token_lists():
        w, d = nearest_accepted(fsm, toks)
        out.append(
            {
                "distance": d,
                "length": len(toks),
                "nearest_text": sep.join(fsm.alphabet[a] for a in w),
                "nearest_tokens": w,
                "text": sep.join(fsm.alphabet[a] for a in toks),
                "tokens": list(toks),
            }
        )
    return out
