"""Regular lookarounds compiled through the FSM algebra (instead of being refused).

Every lookaround of the pattern is replaced by a *marker* symbol (a private-use code point,
one per lookaround) and the pattern is compiled over the alphabet plus the markers: ``M``.  Each
lookaround ``j`` becomes a DFA ``D_j`` over the same symbols that accepts the marked strings
whose marker positions satisfy it:

* lookbehind ``(?<=X)`` / ``(?<!X)``: one run of the DFA of ``.*X`` over the unmarked symbols;
  at each marker ``j`` its state must (not) be accepting;
* lookahead ``(?=X)`` / ``(?!X)``: a run of the DFA of ``X.*`` starts at each marker ``j``
  (a subset construction over the pending runs); a positive lookahead is met once its run
  accepts (``X.*`` stays accepting), a negative one fails then.

The language is ``M & D_1 & ... & D_k`` with the markers erased (epsilon moves, then subset
construction, Hopcroft, canonical numbering).  Lookarounds may sit anywhere, repeated or not,
except inside another lookaround.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .algebra import intersection
from .errors import FsmError
from .fsm import FSM
from .minimize import canonical_fsm, minimize_table

__all__ = ["MARK0", "compile_lookarounds", "has_lookaround"]

Node = tuple[Any, ...]
#: First marker code point (Unicode private use area); markers must not be in the alphabet.
MARK0 = 0xF0000
_MAX_STATES = 100_000
_ANY: Node = ("set", (), True)  # every symbol of the alphabet


def has_lookaround(node: Node) -> bool:
    """True if the parse tree holds a ``("look", kind, child)`` node."""
    op = node[0]
    if op == "look":
        return True
    if op in ("cat", "alt"):
        return any(has_lookaround(c) for c in node[1])
    if op == "rep":
        return has_lookaround(node[1])
    return False


def _bfs(
    start: Any, step: Callable[[Any, int], Any], n_symbols: int, accept: Callable[[Any], bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Explore a DFA given by ``step(state, symbol)`` (``None`` = dead); return its arrays."""
    ids = {start: 0}
    order = [start]
    rows: list[list[int]] = []
    i = 0
    while i < len(order):
        if len(order) > _MAX_STATES:
            raise FsmError(f"a lookaround automaton has more than {_MAX_STATES:,} states: simplify the pattern")
        s = order[i]
        i += 1
        row = []
        for a in range(n_symbols):
            t = step(s, a)
            j = ids.get(t)
            if j is None:
                j = ids[t] = len(order)
                order.append(t)
            row.append(j)
        rows.append(row)
    acc = np.array([s is not None and accept(s) for s in order], dtype=bool)
    return np.array(rows, dtype=np.int64).reshape(len(order), n_symbols), acc


def _constraint(kind: str, C: FSM, full: Sequence[str], sigma: dict[str, int], mark: str) -> FSM:
    """``D_j`` over ``full`` for one lookaround whose body automaton (``X.*`` or ``.*X``) is ``C``."""
    col = [sigma.get(s, -1) for s in full]  # symbol of C for each symbol of full, -1 = a marker
    m = list(full).index(mark)
    table, accepting, sink = C.table, C.accepting, C.sink
    if kind in ("<=", "<!"):
        want = kind == "<="

        def step_b(q: Any, a: int) -> Any:
            if q is None:
                return None
            if a == m:
                return q if bool(accepting[q]) == want else None
            return q if col[a] < 0 else int(table[q, col[a]])

        t, acc = _bfs(C.start, step_b, len(full), lambda q: True)
    else:
        positive = kind == "="

        def settle(runs: frozenset[int]) -> frozenset[int] | None:
            if any(accepting[q] for q in runs):
                if not positive:
                    return None
                runs = frozenset(q for q in runs if not accepting[q])
            if positive and sink in runs:
                return None
            return frozenset(q for q in runs if q != sink)

        def step_a(runs: Any, a: int) -> Any:
            if runs is None:
                return None
            if a == m:
                return settle(runs | {C.start})
            if col[a] < 0:
                return runs
            return settle(frozenset(int(table[q, col[a]]) for q in runs))

        t, acc = _bfs(frozenset(), step_a, len(full), lambda r: not positive or not r)
    tbl, acc2, st = canonical_fsm(*minimize_table(t, acc, 0))
    return FSM(full, tbl, acc2, st)


def _erase(M: FSM, alphabet: Sequence[str]) -> FSM:
    """``M`` with its marker symbols read as empty moves, over ``alphabet`` (subset construction)."""
    index = [M.symbol_index[s] for s in alphabet]
    markers = [i for i, s in enumerate(M.alphabet) if s not in set(alphabet)]

    def closure(states: frozenset[int]) -> frozenset[int]:
        seen = set(states)
        stack = list(states)
        while stack:
            q = stack.pop()
            for a in markers:
                t = int(M.table[q, a])
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen - {M.sink})

    def step(s: Any, a: int) -> Any:
        return closure(frozenset(int(M.table[q, index[a]]) for q in s))

    t, acc = _bfs(closure(frozenset({M.start})), step, len(alphabet), lambda s: any(M.accepting[q] for q in s))
    tbl, acc2, st = canonical_fsm(*minimize_table(t, acc, 0))
    return FSM(alphabet, tbl, acc2, st, pattern=M.pattern)


def compile_lookarounds(ast: Node, alphabet: Sequence[str], build: Callable[[Node, Sequence[str]], FSM]) -> FSM:
    """The minimal FSM of a parse tree with lookarounds over ``alphabet``; ``build(ast, alphabet)``
    compiles a tree without them (the regular compiler)."""
    looks: list[tuple[str, Node]] = []

    def strip(node: Node) -> Node:
        op = node[0]
        if op == "look":
            if has_lookaround(node[2]):
                raise FsmError("a lookaround inside another lookaround is not supported")
            looks.append((node[1], node[2]))
            cp = MARK0 + len(looks) - 1
            return ("set", ((cp, cp),), False)
        if op in ("cat", "alt"):
            return (op, tuple(strip(c) for c in node[1]))
        if op == "rep":
            return ("rep", strip(node[1]), node[2], node[3])
        return node

    marked = strip(ast)
    marks = [chr(MARK0 + j) for j in range(len(looks))]
    if set(marks) & set(alphabet):
        raise FsmError(f"the alphabet holds the private-use characters U+{MARK0:X}.. that mark lookarounds")
    full = sorted([*alphabet, *marks])
    M = build(marked, full)
    sigma = {s: i for i, s in enumerate(alphabet)}
    for j, (kind, body) in enumerate(looks):
        shape = ("cat", (body, ("rep", _ANY, 0, None))) if kind in ("=", "!") else ("cat", (("rep", _ANY, 0, None), body))
        C = build(shape, alphabet)
        M = intersection(M, _constraint(kind, C, full, sigma, marks[j]))
    return _erase(M, list(alphabet))
