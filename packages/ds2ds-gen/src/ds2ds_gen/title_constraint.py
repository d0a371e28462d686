"""Link targets constrained to corpus titles (``GenerationConfig.link_targets="corpus"``).

While a document is inside a link target (after the ``](`` token, before a token that
contains ``)``), only tokens that continue the BPE tokens of some corpus title may be sampled,
and a closing ``)`` token only where a whole title has been written; the model's distribution
is renormalised over those tokens. A target already off the trie (e.g. written so by the prompt) is not
constrained. Titles are tokenized as the corpus writes them after ``](``
(GPT-2 pre-tokenization splits ``](`` from the letters, so a title's tokens there are its own
``encode_ordinary``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["TitleTrie"]

#: how far back a link target may start (tokens)
_MAX_TARGET_TOKENS = 64


class TitleTrie:
    """Allowed next tokens of a link target, given the target tokens written so far."""

    def __init__(
        self,
        titles: Iterable[str],
        encode: Callable[[str], list[int]],
        mid_id: int,
        close_candidates: Iterable[int],
        decode: Callable[[list[int]], str],
    ) -> None:
        self.mid_id = mid_id
        self.close_candidates = frozenset(close_candidates)
        #: tokens that end a target: they start with ")" (")", ").", "),", ...)
        self.closers = frozenset(t for t in self.close_candidates if decode([t]).startswith(")"))
        nxt: dict[tuple[int, ...], set[int]] = {}
        for title in titles:
            toks = tuple(encode(title))
            for i in range(len(toks)):
                nxt.setdefault(toks[:i], set()).add(toks[i])
            nxt.setdefault(toks, set()).update(self.closers)
        self._next = {k: frozenset(v) for k, v in nxt.items()}

    def target_prefix(self, tokens: Sequence[int]) -> tuple[int, ...] | None:
        """The tokens of the link target being written at the end of ``tokens`` (after its
        ``](``), or None when ``tokens`` does not end inside a target."""
        lo = max(0, len(tokens) - _MAX_TARGET_TOKENS)
        for j in range(len(tokens) - 1, lo - 1, -1):
            t = tokens[j]
            if t in self.close_candidates:
                return None  # the last link is closed: outside any target
            if t == self.mid_id:
                return tuple(tokens[j + 1 :])
        return None

    def next_tokens(self, prefix: tuple[int, ...]) -> frozenset[int] | None:
        """The tokens allowed after the target prefix ``prefix``, or None when it is off the trie."""
        return self._next.get(prefix)

    def allowed(self, tokens: Sequence[int]) -> frozenset[int] | None:
        """The tokens allowed next after ``tokens`` (a document's tokens so far, its prompt
        included: a prompt may end inside a target), or None when no constraint applies."""
        prefix = self.target_prefix(tokens)
        return None if prefix is None else self._next.get(prefix)
