"""DFA minimization (Hopcroft) and canonical numbering: the bottom layer shared by the
compiler and :meth:`fsmdata.FSM.from_table` (numpy only, no other fsmdata module)."""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["canonical_fsm", "minimize_table"]


def minimize_table(table: np.ndarray, accepting: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Hopcroft's partition refinement on a complete DFA; return the quotient automaton.

    Worst case O(n * k * log n) for n states and k symbols.
    """
    n, k = table.shape
    # inverse transitions: preds[a][q] = states p with table[p, a] == q (CSR per symbol)
    preds = []
    for a in range(k):
        order = np.argsort(table[:, a], kind="stable")
        counts = np.bincount(table[:, a], minlength=n)
        starts = np.concatenate([[0], np.cumsum(counts)])
        preds.append((order, starts))
    block_of = np.where(accepting, 0, 1)
    blocks: list[set[int]] = [set(np.flatnonzero(accepting).tolist()), set(np.flatnonzero(~accepting).tolist())]
    if not blocks[1]:
        blocks.pop()
    elif not blocks[0]:
        blocks = [blocks[1]]
        block_of[:] = 0
    small = min(range(len(blocks)), key=lambda b: len(blocks[b]))
    work = {(small, a) for a in range(k)} if len(blocks) == 2 else set()
    work_list = deque(sorted(work))
    while work_list:
        b, a = work_list.popleft()
        work.discard((b, a))
        order, starts = preds[a]
        x: set[int] = set()
        for q in blocks[b]:
            x.update(order[starts[q] : starts[q + 1]].tolist())
        if not x:
            continue
        touched: dict[int, list[int]] = {}
        for p in x:
            touched.setdefault(int(block_of[p]), []).append(p)
        for y, inside in touched.items():
            if len(inside) == len(blocks[y]):
                continue
            new_id = len(blocks)
            part = set(inside)
            blocks[y] -= part
            blocks.append(part)
            block_of[inside] = new_id
            for c in range(k):
                if (y, c) in work:
                    work.add((new_id, c))
                    work_list.append((new_id, c))
                else:
                    pick = new_id if len(part) <= len(blocks[y]) else y
                    work.add((pick, c))
                    work_list.append((pick, c))
    nb = len(blocks)
    rep = np.array([min(bl) for bl in blocks])
    new_table = block_of[table[rep]]
    new_acc = accepting[rep]
    return new_table.reshape(nb, k), new_acc, int(block_of[start])


def canonical_fsm(table: np.ndarray, accepting: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Renumber a complete DFA: reachable live states breadth-first from the start (symbols
    in order), then one reject sink standing for every dead state; unreachable states go."""
    n, k = table.shape
    live = accepting.astype(bool).copy()
    while True:
        nxt = live | live[table].any(axis=1)
        if (nxt == live).all():
            break
        live = nxt
    new_id = -np.ones(n, dtype=np.int64)
    order = []
    if live[start]:
        new_id[start] = 0
        order.append(start)
        dq = deque([start])
        while dq:
            q = dq.popleft()
            for t in table[q].tolist():
                if live[t] and new_id[t] < 0:
                    new_id[t] = len(order)
                    order.append(t)
                    dq.append(t)
    sink = len(order)
    mapped = np.where(new_id >= 0, new_id, sink)
    out = np.empty((sink + 1, k), dtype=np.int32)
    out[:sink] = mapped[table[order]] if order else np.empty((0, k))
    out[sink] = sink
    acc = np.zeros(sink + 1, dtype=bool)
    acc[:sink] = accepting[order]
    return out, acc, 0 if order else sink
