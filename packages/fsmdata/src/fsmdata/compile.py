"""Regex -> Thompson NFA -> subset-construction DFA -> Hopcroft minimization -> :class:`FSM`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .errors import FsmError, RegexSyntaxError
from .fsm import FSM
from .lookaround import compile_lookarounds, has_lookaround
from .minimize import canonical_fsm, minimize_table
from .regex_parser import Node, ParsedRegex, deep_recursion, parse_regex, parse_token_regex

__all__ = [
    "DEFAULT_ALPHABET",
    "MAX_DFA_STATES",
    "MAX_NFA_STATES",
    "build_fsm",
    "canonical_fsm",
    "compile_regex",
    "compile_token_regex",
    "minimize_table",
    "nfa_size",
    "regex_alphabet",
]

#: The alphabet used when a pattern has ``.`` or a negated class and none is given:
#: printable ASCII (space to ``~``).
DEFAULT_ALPHABET = "".join(chr(c) for c in range(32, 127))
_MAX_OWN_ALPHABET = 4096
#: Largest Thompson NFA built (estimated from the parse tree before building anything).
MAX_NFA_STATES = 100_000
#: Largest DFA the subset construction may reach before it is stopped.
MAX_DFA_STATES = 100_000


def nfa_size(node: Node) -> int:
    """Number of Thompson NFA states :class:`_NFA` builds for ``node`` (counted repetition
    expands into copies, so ``(a{1000}){100}`` counts 100 x 1,000 copies of ``a``)."""
    op = node[0]
    if op == "eps":
        return 1
    if op == "set":
        return 2
    if op == "cat":
        return sum(nfa_size(c) for c in node[1])
    if op == "alt":
        return 2 + sum(nfa_size(c) for c in node[1])
    if op == "look":  # a marker step here, plus the body's own automaton
        return 2 + nfa_size(node[2])
    _, child, lo, hi = node
    c = nfa_size(child)
    return 2 + c * (lo + 1 if hi is None else hi)


def _check_size(parsed: ParsedRegex) -> None:
    est = nfa_size(parsed.ast)
    if est > MAX_NFA_STATES:
        raise FsmError(
            f"regex {_short(parsed.pattern)} expands to {est:,} automaton (NFA) states, over the limit of "
            f"{MAX_NFA_STATES:,}: lower the counted repetitions ({{m,n}} bounds multiply when nested)"
        )


def _short(pattern: str, n: int = 40) -> str:
    return repr(pattern if len(pattern) <= n else pattern[: n - 3] + "...")


def _leaves(node: Node) -> Iterable[Node]:
    if node[0] == "set":
        yield node
    elif node[0] in ("cat", "alt"):
        for c in node[1]:
            yield from _leaves(c)
    elif node[0] == "rep":
        yield from _leaves(node[1])
    elif node[0] == "look":
        yield from _leaves(node[2])


def regex_alphabet(parsed: ParsedRegex) -> list[str]:
    """The regex's own alphabet: every symbol a non-negated atom names, plus
    :data:`DEFAULT_ALPHABET` (characters) when the pattern has ``.`` or a negated class."""
    if parsed.kind == "token":
        words: set[str] = set()
        for leaf in _leaves(parsed.ast):
            if not leaf[2]:
                words |= leaf[1]
        if parsed.needs_alphabet:
            raise FsmError("the token regex uses '.' or a negated word class: give the vocabulary (vocab=...)")
        return sorted(words)
    chars: set[int] = set()
    for leaf in _leaves(parsed.ast):
        if leaf[2]:
            continue
        for lo, hi in leaf[1]:
            if len(chars) + hi - lo + 1 > _MAX_OWN_ALPHABET:
                raise FsmError(f"the pattern's character classes span more than {_MAX_OWN_ALPHABET} characters; give an alphabet")
            chars.update(range(lo, hi + 1))
    if parsed.needs_alphabet:
        chars.update(ord(c) for c in DEFAULT_ALPHABET)
    return [chr(c) for c in sorted(chars)]


def _resolve(leaf: Node, alphabet: Sequence[str], kind: str) -> frozenset[int]:
    """Alphabet indices matched by a ``("set", items, negated)`` leaf."""
    _, items, negated = leaf
    if kind == "token":
        hit = {i for i, s in enumerate(alphabet) if s in items}
    else:
        hit = {i for i, s in enumerate(alphabet) if any(lo <= ord(s) <= hi for lo, hi in items)}
    if negated:
        hit = set(range(len(alphabet))) - hit
    return frozenset(hit)


class _NFA:
    """Thompson NFA: ``eps[s]`` epsilon targets, ``moves[s]`` a list of (symbol set, target)."""

    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[frozenset[int], int]]] = []

    def new(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def build(self, node: Node, alphabet: Sequence[str], kind: str) -> tuple[int, int]:
        """Fragment for ``node``: (entry, exit) states."""
        op = node[0]
        if op == "eps":
            s = self.new()
            return s, s
        if op == "set":
            s, t = self.new(), self.new()
            syms = _resolve(node, alphabet, kind)
            if syms:
                self.moves[s].append((syms, t))
            return s, t
        if op == "cat":
            first_in, last_out = self.build(node[1][0], alphabet, kind)
            for child in node[1][1:]:
                i, o = self.build(child, alphabet, kind)
                self.eps[last_out].append(i)
                last_out = o
            return first_in, last_out
        if op == "alt":
            s, t = self.new(), self.new()
            for child in node[1]:
                i, o = self.build(child, alphabet, kind)
                self.eps[s].append(i)
                self.eps[o].append(t)
            return s, t
        if op == "rep":
            _, child, lo, hi = node
            s = self.new()
            cur = s
            for _ in range(lo):
                i, o = self.build(child, alphabet, kind)
                self.eps[cur].append(i)
                cur = o
            if hi is None:
                i, o = self.build(child, alphabet, kind)
                t = self.new()
                self.eps[cur] += [i, t]
                self.eps[o] += [i, t]
                return s, t
            t = self.new()
            self.eps[cur].append(t)
            for _ in range(hi - lo):
                i, o = self.build(child, alphabet, kind)
                self.eps[cur].append(i)
                self.eps[o].append(t)
                cur = o
            return s, t
        raise AssertionError(f"unknown node {op}")

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        stack = list(states)
        seen = set(stack)
        while stack:
            s = stack.pop()
            for t in self.eps[s]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)


def _subset(nfa: _NFA, start: int, final: int, n_symbols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Subset construction; the empty set becomes the sink (state 0 of the result is the start)."""
    s0 = nfa.closure([start])
    ids = {s0: 0}
    order = [s0]
    rows: list[list[int]] = []
    i = 0
    while i < len(order):
        if len(order) > MAX_DFA_STATES:
            raise FsmError(
                f"the DFA of this regex has more than {MAX_DFA_STATES:,} states (subset construction stopped at the limit "
                f"of {MAX_DFA_STATES:,}; {len(nfa.eps):,} NFA states): simplify the pattern"
            )
        cur = order[i]
        i += 1
        targets: dict[int, set[int]] = {}
        for s in cur:
            for syms, t in nfa.moves[s]:
                for a in syms:
                    targets.setdefault(a, set()).add(t)
        row = []
        for a in range(n_symbols):
            nxt = nfa.closure(targets[a]) if a in targets else frozenset()
            j = ids.get(nxt)
            if j is None:
                j = ids[nxt] = len(order)
                order.append(nxt)
            row.append(j)
        rows.append(row)
    table = np.array(rows, dtype=np.int64).reshape(len(order), n_symbols)
    accepting = np.array([final in s for s in order], dtype=bool)
    return table, accepting, 0


def _build_ast(node: Node, alphabet: Sequence[str], kind: str) -> FSM:
    nfa = _NFA()
    s, t = nfa.build(node, alphabet, kind)
    table, acc, start = _subset(nfa, s, t, len(alphabet))
    table, acc, start = minimize_table(table, acc, start)
    table, acc, start = canonical_fsm(table, acc, start)
    return FSM(alphabet, table, acc, start, kind=kind)


def _compile(parsed: ParsedRegex, alphabet: Sequence[str]) -> FSM:
    with deep_recursion():
        _check_size(parsed)
        if has_lookaround(parsed.ast):
            if parsed.kind != "char":
                raise FsmError("lookarounds are supported in character regexes only, not in token regexes")
            fsm = compile_lookarounds(parsed.ast, alphabet, lambda n, al: _build_ast(n, al, "char"))
            return FSM(fsm.alphabet, fsm.table, fsm.accepting, fsm.start, kind="char", pattern=parsed.pattern)
        nfa = _NFA()
        s, t = nfa.build(parsed.ast, alphabet, parsed.kind)
    table, acc, start = _subset(nfa, s, t, len(alphabet))
    table, acc, start = minimize_table(table, acc, start)
    table, acc, start = canonical_fsm(table, acc, start)
    return FSM(alphabet, table, acc, start, kind=parsed.kind, pattern=parsed.pattern)


def compile_regex(pattern: str, alphabet: str | Sequence[str] | None = None) -> FSM:
    """Compile a character regex (full-match semantics) into a minimal :class:`FSM`.

    ``alphabet`` (a string of characters, or a list of one-character strings) fixes the
    symbols; by default it is the regex's own characters (see :func:`regex_alphabet`).
    Raises :class:`~fsmdata.errors.RegexSyntaxError` /
    :class:`~fsmdata.errors.UnsupportedConstructError` for bad patterns.
    """
    parsed = parse_regex(pattern)
    if alphabet is None:
        with deep_recursion():
            alpha = regex_alphabet(parsed)
    else:
        alpha = list(alphabet)
        if not alpha or not all(isinstance(c, str) and len(c) == 1 for c in alpha):
            raise FsmError(f"alphabet must be a non-empty string of characters, got {alphabet!r}")
        alpha = sorted(set(alpha))
    if not alpha:
        raise RegexSyntaxError("the pattern names no character (empty alphabet); give an alphabet", pattern, 0)
    return _compile(parsed, alpha)


def compile_token_regex(pattern: str, vocab: Sequence[str] | None = None) -> FSM:
    """Compile a token-level regex over a vocabulary of words into a minimal :class:`FSM`.

    Atoms are whole words (see :mod:`fsmdata.regex_parser`); ``vocab`` is the alphabet
    (default: the words the pattern names; needed for ``.`` and ``[^...]``).  Words of the
    pattern missing from ``vocab`` raise an error.
    """
    parsed = parse_token_regex(pattern)
    if vocab is None:
        with deep_recursion():
            alpha = regex_alphabet(parsed)
    else:
        alpha = list(dict.fromkeys(vocab))
        if not alpha or not all(isinstance(w, str) and w and not any(ch.isspace() for ch in w) for w in alpha):
            raise FsmError("vocab must be a non-empty list of words without whitespace")
        with deep_recursion():
            named = set().union(*[leaf[1] for leaf in _leaves(parsed.ast)])
        missing = sorted(named - set(alpha))
        if missing:
            raise FsmError(f"words of the token regex are not in the vocabulary: {', '.join(missing[:10])}")
    if not alpha:
        raise RegexSyntaxError("the token regex names no word; give a vocabulary", pattern, 0)
    return _compile(parsed, alpha)


def build_fsm(
    regex: str | None = None,
    *,
    alphabet: str | None = None,
    token_regex: str | None = None,
    vocab: Sequence[str] | None = None,
    fsm_path: str | None = None,
) -> FSM:
    """Make an FSM from exactly one source: a character ``regex`` (with optional
    ``alphabet``), a ``token_regex`` (with optional ``vocab``) or a JSON file ``fsm_path``."""
    given = [x is not None for x in (regex, token_regex, fsm_path)]
    if sum(given) != 1:
        raise FsmError("give exactly one of a regex, a token regex or an FSM JSON file")
    if regex is not None:
        return compile_regex(regex, alphabet)
    if token_regex is not None:
        return compile_token_regex(token_regex, vocab)
    return FSM.load(fsm_path)  # type: ignore[arg-type]
