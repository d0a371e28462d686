"""Token-level automata for real tokenizers: which token sequences decode to accepted text.

As in outlines-core, the character DFA is first turned into a byte DFA (each character's
UTF-8 bytes, with intermediate states inside multi-byte characters), and every token is read
byte by byte from every state: ``T[q, t]`` is the state after token ``t`` from ``q``.  A token
sequence is accepted when its decoded bytes are; a token is a valid next token in a state when
the state it leads to can still reach acceptance *through tokens of the vocabulary*; the EOS
token is valid exactly in accepting states.

The vocabulary (tens of thousands of tokens) is compressed into *token classes*: tokens whose
column of ``T`` is the same over all states behave identically, so the generator works on the
minimal DFA over classes (:attr:`TokenFSM.fsm`, a ``kind="token"`` :class:`~fsmdata.FSM`) and a
concrete token is drawn uniformly inside each class of a generated class sequence.  Classes,
coverage (edges = state x token class) and near-miss rejects are therefore all at token level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .compile import compile_regex
from .errors import FsmError
from .fsm import CLASS_NAMES, FSM
from .minimize import canonical_fsm
from .vocab import Vocabulary

__all__ = ["MAX_TOKEN_CELLS", "TokenFSM", "byte_automaton", "compile_token_fsm"]

#: Largest ``byte states x vocabulary`` table built (int32 cells).
MAX_TOKEN_CELLS = 1 << 26


def byte_automaton(fsm: FSM) -> tuple[np.ndarray, np.ndarray, int]:
    """The byte DFA of a character FSM: ``(table[n_bytes_states, 256], accepting, sink)``.

    States ``0..fsm.n_states-1`` are the FSM's own; intermediate states inside a multi-byte
    UTF-8 character follow.  A byte no alphabet character continues with goes to the sink.
    """
    if fsm.kind != "char":
        raise FsmError("a token-level FSM needs a character FSM (regex over characters), not a word-token FSM")
    n = fsm.n_states
    rows: list[np.ndarray] = [np.full(256, fsm.sink, dtype=np.int32) for _ in range(n)]
    inner: dict[tuple[int, bytes], int] = {}
    for a, ch in enumerate(fsm.alphabet):
        bs = ch.encode("utf-8")
        for q in range(n):
            cur = q
            for k in range(len(bs) - 1):
                key = (q, bs[: k + 1])
                nxt = inner.get(key)
                if nxt is None:
                    nxt = inner[key] = len(rows)
                    rows.append(np.full(256, fsm.sink, dtype=np.int32))
                rows[cur][bs[k]] = nxt
                cur = nxt
            rows[cur][bs[-1]] = fsm.table[q, a]
    table = np.stack(rows)
    acc = np.zeros(len(rows), dtype=bool)
    acc[:n] = fsm.accepting
    return table, acc, fsm.sink


def _token_table(btable: np.ndarray, vocab: Vocabulary, sink: int) -> np.ndarray:
    """``T[t, q]``: the byte state after reading token ``t`` from ``q`` (specials -> sink)."""
    nb = btable.shape[0]
    V = len(vocab)
    if nb * V > MAX_TOKEN_CELLS:
        raise FsmError(
            f"the token table would have {nb:,} states x {V:,} tokens = {nb * V:,} cells, over the limit of "
            f"{MAX_TOKEN_CELLS:,}: simplify the pattern or use a smaller vocabulary"
        )
    order, ls, data = vocab.padded
    S = np.tile(np.arange(nb, dtype=np.int32), (V, 1))
    width = int(ls[0]) if V else 0
    ends = np.searchsorted(-ls, -np.arange(width), side="left")  # rows with length > j (longest first)
    for j in range(width):
        na = int(ends[j])
        S[:na] = btable[S[:na], data[:na, j, None]]
    S[ls == 0] = sink  # special tokens (and empty ones) carry no text: never a valid step
    out = np.empty_like(S)
    out[order] = S
    return out


def _unique_rows(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(M, axis=0, return_inverse=True)`` without its slow lexicographic sort:
    rows are hashed to 64 bits, grouped, and the grouping is verified exactly (a collision
    falls back to ``np.unique``).  Unique rows come in order of first occurrence."""
    rng = np.random.default_rng(0x7F5D)
    mult = rng.integers(1, 1 << 63, size=M.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = (M.astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    if not np.array_equal(M[first[inv]], M):  # pragma: no cover - a 64-bit collision
        u, inv2 = np.unique(M, axis=0, return_inverse=True)
        return u, inv2.reshape(-1)
    rank = np.empty(len(first), dtype=np.int64)
    by_first = np.argsort(first, kind="stable")
    rank[by_first] = np.arange(len(first))
    return M[first[by_first]], rank[inv]


def _moore(table: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """Block id of every state after Moore partition refinement (vectorized over symbols)."""
    block = accepting.astype(np.int64)
    n_blocks = len(np.unique(block))
    while True:
        sig = np.concatenate([block[:, None], block[table]], axis=1)
        _, new = _unique_rows(sig)
        m = int(new.max(initial=-1)) + 1
        if m == n_blocks:
            return new
        block, n_blocks = new, m


def _label(tid: int, tok: bytes | None, size: int) -> str:
    if tok is None:
        text = "<special>"
    else:
        raw = tok.decode("utf-8", "backslashreplace")
        text = "".join("␣" if c == " " else c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw)
    return f"{tid}:{text}" + (f"(+{size - 1})" if size > 1 else "")


class TokenFSM:
    """The token-level automaton of a character FSM over a :class:`~fsmdata.vocab.Vocabulary`.

    ``fsm`` is the minimal DFA over token classes; ``class_of[t]`` is token ``t``'s class (a
    symbol of ``fsm``); ``members(c)`` the tokens of class ``c``.  Build with
    :func:`compile_token_fsm`.
    """

    def __init__(self, char_fsm: FSM, vocab: Vocabulary, fsm: FSM, class_of: np.ndarray) -> None:
        self.char_fsm = char_fsm
        self.vocab = vocab
        self.fsm = fsm
        self.class_of = np.ascontiguousarray(class_of, dtype=np.int32)
        order = np.argsort(self.class_of, kind="stable")
        self._flat = order.astype(np.int32)
        self._count = np.bincount(self.class_of, minlength=fsm.n_symbols)
        self._offset = np.concatenate([[0], np.cumsum(self._count)[:-1]])
        # concrete draws take text-bearing tokens: a special token only where a class has nothing else
        texty = np.array([t is not None for t in vocab.tokens], dtype=bool)
        key = self.class_of.astype(np.int64) * 2 + (~texty)
        draw = np.argsort(key, kind="stable").astype(np.int32)
        n_text = np.bincount(self.class_of[texty], minlength=fsm.n_symbols)
        self._draw = draw
        self._draw_count = np.where(n_text > 0, n_text, self._count)

    @property
    def n_tokens(self) -> int:
        """Vocabulary size (the width of every mask)."""
        return len(self.class_of)

    def members(self, c: int) -> np.ndarray:
        """Token ids of class ``c`` (ascending)."""
        return self._flat[self._offset[c] : self._offset[c] + self._count[c]]

    def token_table(self) -> np.ndarray:
        """The full ``(n_states, n_tokens)`` next-state table (states of :attr:`fsm`)."""
        return self.fsm.table[:, self.class_of]

    def states(self, ids: Sequence[int]) -> list[int]:
        """States after each prefix of ``ids`` (``len(ids) + 1`` states)."""
        q = self.fsm.start
        out = [q]
        for t in ids:
            q = int(self.fsm.table[q, self.class_of[int(t)]])
            out.append(q)
        return out

    def classify(self, ids: Sequence[int], task: str = "ternary") -> str:
        """``A`` (the decoded text is accepted), ``I`` (some token continuation is) or ``R``."""
        c = CLASS_NAMES[int(self.fsm.state_class[self.states(ids)[-1]])]
        return "R" if task == "binary" and c == "I" else c

    def valid_next_tokens(self, ids: Sequence[int]) -> np.ndarray:
        """Boolean ``(len(ids) + 1, n_tokens)`` masks: row ``i`` marks the tokens after which
        ``ids[:i] + [t]`` can still be completed to accepted text; the EOS column (if the
        vocabulary has one) marks the accepted prefixes."""
        st = np.array(self.states(ids), dtype=np.int64)
        live = self.fsm.live[self.fsm.table[st]]  # (L+1, classes)
        masks = live[:, self.class_of]
        if self.vocab.eos_id is not None:
            masks[:, self.vocab.eos_id] = self.fsm.accepting[st]
        return masks

    def concretize(self, classes: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """One token id per class symbol, uniform over the class's text-bearing tokens (over its
        special tokens only when it has no other)."""
        c = np.asarray(classes, dtype=np.int64)
        n = self._draw_count[c]
        pick = (rng.random(len(c)) * n).astype(np.int64)
        return self._draw[self._offset[c] + np.minimum(pick, n - 1)]

    def decode(self, ids: Sequence[int]) -> bytes:
        """The decoded bytes of a token id sequence."""
        return self.vocab.decode(ids)

    def summary(self) -> dict[str, Any]:
        """Sizes: states, token classes, tokens, EOS id."""
        return {
            "states": self.fsm.n_states,
            "token_classes": self.fsm.n_symbols,
            "tokens": self.n_tokens,
            "eos_id": self.vocab.eos_id,
            "vocabulary": self.vocab.name,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the class FSM, the char FSM, ``class_of`` and the vocabulary (hex bytes)."""
        return {
            "format": "fsmdata.token_fsm/1",
            "fsm": self.fsm.to_dict(),
            "char_fsm": self.char_fsm.to_dict(),
            "class_of": self.class_of.tolist(),
            "vocabulary": {
                "name": self.vocab.name,
                "eos_id": self.vocab.eos_id,
                "tokens": [None if t is None else t.hex() for t in self.vocab.tokens],
            },
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> TokenFSM:
        """Inverse of :meth:`to_dict`."""
        v = obj["vocabulary"]
        vocab = Vocabulary(tuple(None if t is None else bytes.fromhex(t) for t in v["tokens"]), v["eos_id"], v["name"])
        return cls(FSM.from_table(obj["char_fsm"]), vocab, FSM.from_table(obj["fsm"]), np.array(obj["class_of"]))


def compile_token_fsm(pattern: str | FSM, vocab: Vocabulary, alphabet: str | None = None) -> TokenFSM:
    """The :class:`TokenFSM` of a character regex (or character FSM) over ``vocab``.

    Steps: char DFA -> byte DFA -> ``T[q, t]`` by reading every token from every state ->
    token classes (equal columns) -> Moore minimization over classes -> canonical numbering
    (one sink, last) -> classes merged again where minimization made columns equal.
    """
    char_fsm = compile_regex(pattern, alphabet) if isinstance(pattern, str) else pattern
    btable, bacc, sink = byte_automaton(char_fsm)
    T = _token_table(btable, vocab, sink)  # (V, nb)
    cols, inv = _unique_rows(T)
    ctable = np.ascontiguousarray(cols.T)  # (nb, K)
    block = _moore(ctable, bacc)
    nb_min = int(block.max()) + 1
    rep = np.zeros(nb_min, dtype=np.int64)
    rep[block[::-1]] = np.arange(len(block))[::-1]  # smallest state of each block
    mtable = block[ctable[rep]]
    macc = bacc[rep]
    table, acc, start = canonical_fsm(mtable, macc, int(block[char_fsm.start]))
    cols2, inv2 = _unique_rows(np.ascontiguousarray(table.T))
    class_of = inv2[inv]
    ftable = np.ascontiguousarray(cols2.T)
    # classes in order of their smallest token id, so the numbering does not depend on np.unique
    first = np.full(ftable.shape[1], len(class_of), dtype=np.int64)
    np.minimum.at(first, class_of, np.arange(len(class_of)))
    perm = np.argsort(first, kind="stable")
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    class_of = rank[class_of]
    ftable = ftable[:, perm]
    sizes = np.bincount(class_of, minlength=ftable.shape[1])
    labels = [_label(int(first[perm[k]]), vocab.tokens[int(first[perm[k]])], int(sizes[k])) for k in range(len(perm))]
    name = pattern if isinstance(pattern, str) else char_fsm.pattern
    fsm = FSM(labels, ftable, acc, start, kind="token", pattern=name)
    return TokenFSM(char_fsm, vocab, fsm, class_of)
