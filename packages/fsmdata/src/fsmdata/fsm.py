"""The compiled automaton: a complete, minimal DFA with an explicit reject sink.

States are numbered breadth-first from the start state (symbols in alphabet order); the
reject sink is always the last state.  The transition table is a numpy ``int32`` array of
shape ``(n_states, n_symbols)``.  A string's class is the class of the state it ends in:

* ``A`` (0): the state accepts;
* ``I`` (1): it does not accept, but an accepting state is still reachable;
* ``R`` (2): no accepting state is reachable (in a minimal DFA: the sink).

In the ``binary`` task ``I`` folds into ``R``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FsmFormatError
from .minimize import canonical_fsm, minimize_table

__all__ = ["CLASS_IDS", "CLASS_NAMES", "FSM"]

CLASS_NAMES = ("A", "I", "R")
CLASS_IDS = {c: i for i, c in enumerate(CLASS_NAMES)}
FORMAT = "fsmdata.fsm/1"


def _int_table(rows: list[Any], n: int, S: int) -> np.ndarray | None:
    """The table as an int array when every entry is a valid int (fast path), else None
    (the caller then walks the rows to name the first bad entry)."""
    try:
        arr = np.array(rows)
    except (ValueError, TypeError):
        return None
    if arr.shape != (n, S) or arr.dtype.kind not in "iu" or (arr.size and (arr.min() < -1 or arr.max() >= n)):
        return None
    return arr.astype(np.int64)


class FSM:
    """A complete minimal DFA over a finite alphabet of symbols (characters or words).

    Build one with :func:`fsmdata.compile_regex`, :func:`fsmdata.compile_token_regex` or
    :meth:`FSM.from_table`; do not mutate its arrays.
    """

    def __init__(
        self,
        alphabet: Sequence[str],
        table: np.ndarray,
        accepting: np.ndarray,
        start: int = 0,
        *,
        kind: str = "char",
        pattern: str | None = None,
    ) -> None:
        self.alphabet: tuple[str, ...] = tuple(alphabet)
        self.table = np.ascontiguousarray(table, dtype=np.int32)
        self.accepting = np.asarray(accepting, dtype=bool)
        self.start = int(start)
        self.kind = kind
        self.pattern = pattern
        self.n_states, self.n_symbols = self.table.shape
        self.symbol_index = {s: i for i, s in enumerate(self.alphabet)}
        self.table.setflags(write=False)
        self.accepting.setflags(write=False)
        self.live = self._co_reachable()
        self.live.setflags(write=False)
        dead = np.flatnonzero(~self.live)
        # The sink: the (unique, after minimization) dead state; last by construction.
        self.sink = int(dead[-1]) if len(dead) else -1
        #: class id (0 A, 1 I, 2 R) of every state.
        self.state_class = np.where(self.accepting, 0, np.where(self.live, 1, 2)).astype(np.int8)

    # -- structure -------------------------------------------------------------------
    def _co_reachable(self) -> np.ndarray:
        live = self.accepting.copy()
        while True:
            nxt = live | live[self.table].any(axis=1)
            if (nxt == live).all():
                return nxt
            live = nxt

    def reachable(self) -> np.ndarray:
        """Boolean mask of states reachable from the start state."""
        seen = np.zeros(self.n_states, dtype=bool)
        seen[self.start] = True
        frontier = [self.start]
        while frontier:
            nxt = np.unique(self.table[frontier].ravel())
            new = nxt[~seen[nxt]]
            seen[new] = True
            frontier = list(new)
        return seen

    @property
    def is_empty(self) -> bool:
        """True if the FSM accepts no string."""
        return not bool(self.live[self.start])

    def live_edges(self) -> np.ndarray:
        """Boolean ``(n_states, n_symbols)`` mask of edges between reachable live states."""
        reach = self.reachable() & self.live
        return reach[:, None] & self.live[self.table]

    def fatal_edges(self) -> np.ndarray:
        """Boolean mask of edges from a reachable live state into a dead state (illegal steps)."""
        reach = self.reachable() & self.live
        return reach[:, None] & ~self.live[self.table]

    def shortest_accepted_length(self) -> int | None:
        """Length of the shortest accepted string (None if the language is empty)."""
        seen = {self.start}
        frontier, t = [self.start], 0
        while frontier:
            if self.accepting[frontier].any():
                return t
            nxt = set(np.unique(self.table[frontier].ravel()).tolist()) - seen
            seen |= nxt
            frontier, t = sorted(nxt), t + 1
        return None

    # -- running ---------------------------------------------------------------------
    def encode(self, text: str | Sequence[str] | Sequence[int], *, strict: bool = True) -> list[int]:
        """Symbol ids of ``text``: a str is split into characters (``char`` FSMs) or on
        whitespace (``token`` FSMs); a list of str is a list of symbols; ints pass through.

        With ``strict`` an unknown symbol raises :class:`FsmFormatError`; otherwise it maps
        to ``-1`` (which every method treats as a step into the sink).
        """
        if isinstance(text, str):
            symbols: Iterable[Any] = text.split() if self.kind == "token" else text
        else:
            symbols = text
        out = []
        for pos, s in enumerate(symbols):
            if isinstance(s, (int, np.integer)):
                if not 0 <= s < self.n_symbols:
                    if strict:
                        raise FsmFormatError(f"symbol id {s} at position {pos} is outside 0..{self.n_symbols - 1}")
                    out.append(-1)
                else:
                    out.append(int(s))
                continue
            i = self.symbol_index.get(s)
            if i is None:
                if strict:
                    raise FsmFormatError(f"symbol {s!r} at position {pos} is not in the FSM's alphabet")
                out.append(-1)
            else:
                out.append(i)
        return out

    def decode(self, tokens: Iterable[int]) -> str:
        """The text of a token id sequence (words joined by spaces for token FSMs)."""
        sep = " " if self.kind == "token" else ""
        return sep.join(self.alphabet[int(t)] for t in tokens)

    def step(self, state: int, symbol: int) -> int:
        """The state after reading ``symbol`` (an unknown symbol leads to the sink)."""
        if symbol < 0 or symbol >= self.n_symbols:
            return self.sink
        return int(self.table[state, symbol])

    def trace(self, tokens: str | Sequence[Any]) -> list[int]:
        """States visited reading ``tokens`` from the start: ``len(tokens) + 1`` states."""
        ids = self.encode(tokens, strict=False)
        states = [self.start]
        q = self.start
        for a in ids:
            q = self.step(q, a)
            states.append(q)
        return states

    def run(self, tokens: str | Sequence[Any]) -> int:
        """The state reached after reading ``tokens``."""
        return self.trace(tokens)[-1]

    def accepts(self, tokens: str | Sequence[Any]) -> bool:
        """True if the whole of ``tokens`` is in the language (full-match semantics)."""
        return bool(self.accepting[self.run(tokens)])

    def classify(self, tokens: str | Sequence[Any], task: str = "ternary") -> str:
        """``"A"``, ``"I"`` or ``"R"`` (ternary) or ``"A"``/``"R"`` (binary) for ``tokens``."""
        c = CLASS_NAMES[int(self.state_class[self.run(tokens)])]
        if task == "binary" and c == "I":
            return "R"
        if task not in ("ternary", "binary"):
            raise ValueError(f"task must be 'ternary' or 'binary', got {task!r}")
        return c

    def valid_next(self, state: int) -> np.ndarray:
        """Boolean mask of symbols after which an accepting state is still reachable."""
        return self.live[self.table[state]]

    # -- serialization ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the :meth:`from_table` format, with a ``format`` tag)."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "pattern": self.pattern,
            "alphabet": list(self.alphabet),
            "start": self.start,
            "accepting": np.flatnonzero(self.accepting).tolist(),
            "sink": self.sink,
            "table": self.table.tolist(),
        }

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<json>", minimize: bool = False) -> FSM:
        """Parse JSON text in the :meth:`from_table` format."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise FsmFormatError(f"{source}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
        return cls.from_table(obj, source=source, minimize=minimize)

    @classmethod
    def load(cls, path: str | Path, *, minimize: bool = False) -> FSM:
        """Read an FSM from a JSON file (see :meth:`from_table`)."""
        p = Path(path)
        return cls.from_json(p.read_bytes(), source=str(p), minimize=minimize)

    @classmethod
    def from_table(cls, obj: Any, *, source: str = "<table>", minimize: bool = False) -> FSM:
        """Build an FSM from a JSON transition table.

        ``obj`` has ``alphabet`` (list of str), ``accepting`` (list of state ids), optional
        ``start`` (default 0), optional ``kind`` (``"char"`` or ``"token"``), and either
        ``table`` (rows of next-state ids, one per state, one column per symbol; ``null`` or
        ``-1`` = undefined) or ``transitions`` (``{"state": {"symbol": next_state}}``, state
        keys as strings).  Undefined transitions go to a reject sink.  With ``minimize`` the
        result is minimized; otherwise it is only completed and renumbered.
        """

        def bad(field: str, why: str) -> FsmFormatError:
            return FsmFormatError(f"{source}: field {field!r}: {why}")

        if not isinstance(obj, dict):
            raise FsmFormatError(f"{source}: expected a JSON object, got {type(obj).__name__}")
        alphabet = obj.get("alphabet")
        if not isinstance(alphabet, list) or not alphabet or not all(isinstance(s, str) and s for s in alphabet):
            raise bad("alphabet", "must be a non-empty list of non-empty strings")
        if len(set(alphabet)) != len(alphabet):
            raise bad("alphabet", "has duplicate symbols")
        kind = obj.get("kind", "char" if all(len(s) == 1 for s in alphabet) else "token")
        if kind not in ("char", "token"):
            raise bad("kind", f"must be 'char' or 'token', got {kind!r}")
        if kind == "char" and not all(len(s) == 1 for s in alphabet):
            raise bad("alphabet", "a 'char' FSM needs one-character symbols")
        S = len(alphabet)
        if "table" in obj:
            rows = obj["table"]
            if not isinstance(rows, list) or not rows:
                raise bad("table", "must be a non-empty list of rows")
            n = len(rows)
            table = np.full((n, S), -1, dtype=np.int64)
            fast = _int_table(rows, n, S)
            if fast is not None:
                table = fast
            for q, row in enumerate(rows if fast is None else ()):
                if not isinstance(row, list) or len(row) != S:
                    raise bad(f"table[{q}]", f"must be a list of {S} entries (one per symbol)")
                for a, t in enumerate(row):
                    if t is None:
                        continue
                    if not isinstance(t, int) or isinstance(t, bool) or not -1 <= t < n:
                        raise bad(f"table[{q}][{a}]", f"must be a state id in 0..{n - 1}, -1 or null; got {t!r}")
                    table[q, a] = t
        elif "transitions" in obj:
            trans = obj["transitions"]
            if not isinstance(trans, dict):
                raise bad("transitions", "must be an object {state: {symbol: next_state}}")
            ids: set[int] = set()
            for k, m in trans.items():
                try:
                    ids.add(int(k))
                except ValueError:
                    raise bad(f"transitions.{k}", "state keys must be integers") from None
                if not isinstance(m, dict):
                    raise bad(f"transitions.{k}", "must be an object {symbol: next_state}")
                for sym, t in m.items():
                    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
                        raise bad(f"transitions.{k}.{sym}", f"must be a state id >= 0, got {t!r}")
                    ids.add(t)
            n = max(ids | {int(obj.get("start", 0) or 0)} | set(x for x in obj.get("accepting", []) if isinstance(x, int))) + 1
            table = np.full((n, S), -1, dtype=np.int64)
            index = {s: i for i, s in enumerate(alphabet)}
            for k, m in trans.items():
                for sym, t in m.items():
                    if sym not in index:
                        raise bad(f"transitions.{k}.{sym}", "symbol is not in the alphabet")
                    table[int(k), index[sym]] = t
        else:
            raise bad("table", "one of 'table' or 'transitions' is required")
        n = table.shape[0]
        start = obj.get("start", 0)
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < n:
            raise bad("start", f"must be a state id in 0..{n - 1}, got {start!r}")
        acc_list = obj.get("accepting")
        if not isinstance(acc_list, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n for x in acc_list
        ):
            raise bad("accepting", f"must be a list of state ids in 0..{n - 1}")
        # Complete the table with a fresh sink, then canonicalize (and maybe minimize).
        full = np.vstack([table, np.full((1, S), n)])
        full[full < 0] = n
        accepting = np.zeros(n + 1, dtype=bool)
        accepting[acc_list] = True
        if minimize:
            full, accepting, start = minimize_table(full, accepting, start)
        tbl, acc, st = canonical_fsm(full, accepting, start)
        return cls(alphabet, tbl, acc, st, kind=kind, pattern=obj.get("pattern"))

    def to_dot(self, *, show_sink: bool = False) -> str:
        """Graphviz DOT text; parallel edges are merged into one labelled edge."""

        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        lines = ["digraph fsm {", "  rankdir=LR;", '  __start [shape=point, label=""];']
        reach = self.reachable()
        for q in range(self.n_states):
            if not reach[q] or (q == self.sink and not show_sink):
                continue
            shape = "doublecircle" if self.accepting[q] else "circle"
            lines.append(f'  {q} [shape={shape}, label="{q}"];')
        lines.append(f"  __start -> {self.start};")
        for q in range(self.n_states):
            if not reach[q] or (q == self.sink and not show_sink):
                continue
            groups: dict[int, list[str]] = {}
            for a in range(self.n_symbols):
                t = int(self.table[q, a])
                if t == self.sink and not show_sink:
                    continue
                groups.setdefault(t, []).append(self.alphabet[a])
            for t, syms in groups.items():
                label = ",".join(syms) if len(syms) <= 8 else ",".join(syms[:8]) + f",...(+{len(syms) - 8})"
                lines.append(f'  {q} -> {t} [label="{esc(label)}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, Any]:
        """Counts for a quick look: states, live states, edges, accepting states."""
        return {
            "kind": self.kind,
            "states": self.n_states,
            "live_states": int((self.live & self.reachable()).sum()),
            "symbols": self.n_symbols,
            "live_edges": int(self.live_edges().sum()),
            "fatal_edges": int(self.fatal_edges().sum()),
            "accepting": int(self.accepting.sum()),
            "shortest_accepted": self.shortest_accepted_length(),
            "sink": self.sink,
        }

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FSM)
            and self.alphabet == other.alphabet
            and self.start == other.start
            and self.kind == other.kind
            and np.array_equal(self.table, other.table)
            and np.array_equal(self.accepting, other.accepting)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FSM(kind={self.kind!r}, states={self.n_states}, symbols={self.n_symbols}, pattern={self.pattern!r})"
