"""A small pure-Python reference: parser, printer, normal-order reducer, exact-count sampler.

Written independently of the Rust core (tree of tuples, recursive substitution with the
textbook shift/subst definitions) so the test suite can check one against the other, and
the benchmark can report the Rust pipeline's speed-up over plain Python on the same config.

Terms: ``("var", i)``, ``("lam", body)``, ``("app", f, a)``.
"""

from __future__ import annotations

import random
import sys
from functools import cache
from typing import Any

Tree = tuple[Any, ...]


def parse(text: str) -> Tree:
    """Parse canonical text (open terms allowed here; the caller checks closedness)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    pos = 0

    def term() -> Tree:
        nonlocal pos
        c = text[pos : pos + 1]
        if c == "\\":
            pos += 1
            return ("lam", term())
        if c == "(":
            pos += 1
            f = term()
            if text[pos : pos + 1] != " ":
                raise ValueError(f"position {pos}: expected a space")
            pos += 1
            a = term()
            if text[pos : pos + 1] != ")":
                raise ValueError(f"position {pos}: expected ')'")
            pos += 1
            return ("app", f, a)
        start = pos
        while pos < len(text) and text[pos].isdigit():
            pos += 1
        if start == pos:
            raise ValueError(f"position {pos}: expected a term")
        return ("var", int(text[start:pos]))

    t = term()
    if pos != len(text):
        raise ValueError(f"position {pos}: trailing input")
    return t


def show(t: Tree) -> str:
    """Canonical text of a tree."""
    if t[0] == "var":
        return str(t[1])
    if t[0] == "lam":
        return "\\" + show(t[1])
    return f"({show(t[1])} {show(t[2])})"


def size(t: Tree) -> int:
    """Number of nodes."""
    if t[0] == "var":
        return 1
    if t[0] == "lam":
        return 1 + size(t[1])
    return 1 + size(t[1]) + size(t[2])


def depth(t: Tree) -> int:
    """Tree height (variables 0)."""
    if t[0] == "var":
        return 0
    if t[0] == "lam":
        return 1 + depth(t[1])
    return 1 + max(depth(t[1]), depth(t[2]))


def shift(t: Tree, d: int, cutoff: int = 0) -> Tree:
    """Add ``d`` to every variable >= ``cutoff`` (free at this level)."""
    if t[0] == "var":
        return ("var", t[1] + d) if t[1] >= cutoff else t
    if t[0] == "lam":
        return ("lam", shift(t[1], d, cutoff + 1))
    return ("app", shift(t[1], d, cutoff), shift(t[2], d, cutoff))


def subst(t: Tree, j: int, s: Tree) -> Tree:
    """Replace variable ``j`` by ``s`` in ``t``."""
    if t[0] == "var":
        return s if t[1] == j else t
    if t[0] == "lam":
        return ("lam", subst(t[1], j + 1, shift(s, 1)))
    return ("app", subst(t[1], j, s), subst(t[2], j, s))


def beta(body: Tree, arg: Tree) -> Tree:
    """``(\\body) arg`` contracted: ``shift(subst(body, 0, shift(arg, 1)), -1)``."""
    return shift(subst(body, 0, shift(arg, 1)), -1)


def step(t: Tree) -> Tree | None:
    """One leftmost-outermost step, or None in normal form."""
    if t[0] == "var":
        return None
    if t[0] == "lam":
        b = step(t[1])
        return None if b is None else ("lam", b)
    f, a = t[1], t[2]
    if f[0] == "lam":
        return beta(f[1], a)
    f2 = step(f)
    if f2 is not None:
        return ("app", f2, a)
    a2 = step(a)
    return None if a2 is None else ("app", f, a2)


#: Reduction strategies, by the names the core uses.
STRATEGIES = ("normal", "call_by_name", "call_by_value", "applicative", "head")


def _cbn(t: Tree) -> Tree | None:
    """Weak head step: down the function spine only, never under a lambda or into an argument."""
    if t[0] != "app":
        return None
    f, a = t[1], t[2]
    if f[0] == "lam":
        return beta(f[1], a)
    f2 = _cbn(f)
    return None if f2 is None else ("app", f2, a)


def _head(t: Tree) -> Tree | None:
    """Head step: under the leading lambdas, then the weak head redex."""
    if t[0] == "lam":
        b = _head(t[1])
        return None if b is None else ("lam", b)
    return _cbn(t)


def _cbv(t: Tree) -> Tree | None:
    """Call-by-value step, left to right, weak; values are abstractions and variables."""
    if t[0] != "app":
        return None
    f, a = t[1], t[2]
    f2 = _cbv(f)
    if f2 is not None:
        return ("app", f2, a)
    a2 = _cbv(a)
    if a2 is not None:
        return ("app", f, a2)
    if f[0] == "lam" and a[0] != "app":
        return beta(f[1], a)
    return None


def _applicative(t: Tree) -> Tree | None:
    """Leftmost-innermost step, also under lambdas: function, argument, then the redex itself."""
    if t[0] == "var":
        return None
    if t[0] == "lam":
        b = _applicative(t[1])
        return None if b is None else ("lam", b)
    f, a = t[1], t[2]
    f2 = _applicative(f)
    if f2 is not None:
        return ("app", f2, a)
    a2 = _applicative(a)
    if a2 is not None:
        return ("app", f, a2)
    return beta(f[1], a) if f[0] == "lam" else None


def step_with(t: Tree, strategy: str = "normal") -> Tree | None:
    """One step of ``strategy`` (see :data:`STRATEGIES`), or None when it has none to take."""
    fn = {"normal": step, "call_by_name": _cbn, "call_by_value": _cbv, "applicative": _applicative, "head": _head}
    return fn[strategy](t)


def trace(text: str, max_steps: int, max_size: int, strategy: str = "normal") -> tuple[list[str], str]:
    """Trace with the same caps and cycle rule as the core: (terms as text, status).

    When ``strategy`` has no step left the status is ``normal_form`` if the term has no redex
    at all, else ``strategy_normal_form``."""
    t = parse(text)
    terms = [text]
    seen = {text}
    while True:
        nxt = step_with(t, strategy)
        if nxt is None:
            return terms, "normal_form" if step(t) is None else "strategy_normal_form"
        if len(terms) - 1 >= max_steps:
            return terms, "step_cap"
        if size(nxt) > max_size:
            return terms, "size_cap"
        s = show(nxt)
        terms.append(s)
        if s in seen:
            return terms, "cycle"
        seen.add(s)
        t = nxt


@cache
def count(s: int, d: int, k: int = 0) -> int:
    """Closed-under-``k``-binders terms of size ``s`` and depth <= ``d`` (exact ints)."""
    if s == 1:
        return k
    if d == 0 or s < 1:
        return 0
    c = count(s - 1, d - 1, k + 1)
    for i in range(1, s - 1):
        c += count(i, d - 1, k) * count(s - 1 - i, d - 1, k)
    return c


def sample(s: int, d: int, rng: random.Random, k: int = 0) -> Tree:
    """Uniform random term by exact counting (big-int ranks, no rounding)."""
    if s == 1:
        return ("var", rng.randrange(k))
    r = rng.randrange(count(s, d, k))
    lam = count(s - 1, d - 1, k + 1)
    if r < lam:
        return ("lam", sample(s - 1, d - 1, rng, k + 1))
    r -= lam
    for i in range(1, s - 1):
        c = count(i, d - 1, k) * count(s - 1 - i, d - 1, k)
        if r < c:
            return ("app", sample(i, d - 1, rng, k), sample(s - 1 - i, d - 1, rng, k))
        r -= c
    raise AssertionError("rank out of range")


def enumerate_terms(s: int, d: int, k: int = 0) -> list[str]:
    """Every closed term of size ``s`` and depth <= ``d``, as text (for small sizes)."""
    if s == 1:
        return [str(i) for i in range(k)]
    if d == 0:
        return []
    out = ["\\" + b for b in enumerate_terms(s - 1, d - 1, k + 1)]
    for i in range(1, s - 1):
        for f in enumerate_terms(i, d - 1, k):
            for a in enumerate_terms(s - 1 - i, d - 1, k):
                out.append(f"({f} {a})")
    return out


def generate_examples(
    n: int, cells: list[tuple[int, int, float]], max_steps: int, max_size: int, seed: int = 0
) -> list[dict[str, Any]]:
    """The same pipeline as the core, in plain Python: sample, trace, dedup, one record per step."""
    rng = random.Random(seed)
    weights = [w for _, _, w in cells]
    starts: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []
    tid = 0
    while len(out) < n:
        s, d, _ = rng.choices(cells, weights)[0]
        start = show(sample(s, d, rng))
        if start in starts:
            continue
        starts.add(start)
        terms, status = trace(start, max_steps, max_size)
        tid += 1
        for i, (a, b) in enumerate(zip(terms, terms[1:])):
            if (a, b) in pairs or len(out) >= n:
                continue
            pairs.add((a, b))
            t = parse(a)
            out.append(
                {
                    "id": f"{tid}-{i}",
                    "input": a,
                    "target": b,
                    "meta": {
                        "step": i,
                        "total_steps": len(terms) - 1,
                        "size": size(t),
                        "depth": depth(t),
                        "status": status,
                        "trace_id": str(tid),
                    },
                }
            )
    return out
