"""FSM algebra: intersection, union, difference and complement of automata.

Binary operations run the product construction over the union of the two alphabets (a symbol
one automaton lacks sends it to its sink), keep the product states reachable from the start
pair, then minimize and number canonically, so the result is an ordinary minimal
:class:`~fsmdata.fsm.FSM` (equal languages give equal FSMs).  The complement is taken within
the FSM's own alphabet: every string over it that the FSM rejects.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from .errors import FsmError
from .fsm import FSM
from .minimize import canonical_fsm, minimize_table

__all__ = ["complement", "difference", "intersection", "union", "widen"]

#: Largest product automaton built (reachable state pairs).
MAX_PRODUCT_STATES = 1_000_000


def widen(fsm: FSM, alphabet: tuple[str, ...]) -> FSM:
    """The same language over a larger ``alphabet`` (a superset of ``fsm.alphabet``): new
    symbols lead to the sink."""
    if alphabet == fsm.alphabet:
        return fsm
    missing = set(fsm.alphabet) - set(alphabet)
    if missing:
        raise FsmError(f"widen: the new alphabet lacks symbols of the FSM: {sorted(missing)[:10]}")
    n = fsm.n_states
    sink = fsm.sink if fsm.sink >= 0 else n
    table = np.full((n + (1 if fsm.sink < 0 else 0), len(alphabet)), sink, dtype=np.int64)
    cols = [alphabet.index(s) for s in fsm.alphabet]
    table[:n, cols] = fsm.table
    acc = np.zeros(len(table), dtype=bool)
    acc[:n] = fsm.accepting
    t, a, s = canonical_fsm(*minimize_table(table, acc, fsm.start))
    return FSM(alphabet, t, a, s, kind=fsm.kind, pattern=fsm.pattern)


def _product(x: FSM, y: FSM, keep: Callable[[bool, bool], bool], name: str) -> FSM:
    if x.kind != y.kind:
        raise FsmError(f"{name}: cannot combine a {x.kind} FSM with a {y.kind} FSM")
    alphabet = tuple(sorted(set(x.alphabet) | set(y.alphabet)))
    x, y = widen(x, alphabet), widen(y, alphabet)
    S = len(alphabet)
    ids = {(x.start, y.start): 0}
    order = [(x.start, y.start)]
    rows: list[list[int]] = []
    dq = deque([0])
    xt, yt = x.table.tolist(), y.table.tolist()
    while dq:
        i = dq.popleft()
        p, q = order[i]
        row = []
        for a in range(S):
            nxt = (xt[p][a], yt[q][a])
            j = ids.get(nxt)
            if j is None:
                if len(order) >= MAX_PRODUCT_STATES:
                    raise FsmError(f"{name}: the product automaton passed the limit of {MAX_PRODUCT_STATES:,} states")
                j = ids[nxt] = len(order)
                order.append(nxt)
                dq.append(j)
            row.append(j)
        rows.append(row)
    table = np.array(rows, dtype=np.int64).reshape(len(order), S)
    acc = np.array([keep(bool(x.accepting[p]), bool(y.accepting[q])) for p, q in order], dtype=bool)
    t, t_acc, s = canonical_fsm(*minimize_table(table, acc, 0))
    pattern = f"({x.pattern}) {name} ({y.pattern})" if x.pattern and y.pattern else None
    return FSM(alphabet, t, t_acc, s, kind=x.kind, pattern=pattern)


def intersection(x: FSM, y: FSM) -> FSM:
    """Strings both accept."""
    return _product(x, y, lambda a, b: a and b, "and")


def union(x: FSM, y: FSM) -> FSM:
    """Strings either accepts."""
    return _product(x, y, lambda a, b: a or b, "or")


def difference(x: FSM, y: FSM) -> FSM:
    """Strings ``x`` accepts and ``y`` does not."""
    return _product(x, y, lambda a, b: a and not b, "minus")


def complement(x: FSM) -> FSM:
    """Every string over ``x.alphabet`` that ``x`` rejects."""
    table = x.table.astype(np.int64)
    acc = ~x.accepting
    t, a, s = canonical_fsm(*minimize_table(table, acc, x.start))
    return FSM(x.alphabet, t, a, s, kind=x.kind, pattern=f"not ({x.pattern})" if x.pattern else None)
