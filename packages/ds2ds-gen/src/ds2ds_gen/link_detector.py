"""Finding markdown links ``[text](target)`` in token sequences while they are generated.

GPT-2 BPE merges ``)`` with following punctuation (``).`` is one token) and ``](`` is one token,
so detection works on the characters of the decoded tokens, with a map back to token indices.
Starting from a ``)`` inside the token at ``end_pos``, a stack walk backwards matches the
target's parentheses (``[Mercury](Mercury (planet))`` works), requires ``](`` right before the
target, then matches the text's brackets back to ``[`` (parentheses inside the text are fine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .tokenizer import get_encoding, link_token_ids

__all__ = ["DetectedLink", "LinkDetector"]


@dataclass
class DetectedLink:
    """A markdown link found in a token sequence (token positions; text and target as strings)."""

    bracket_open_pos: int
    bracket_close_pos: int
    paren_open_pos: int
    paren_close_pos: int
    link_text_tokens: np.ndarray
    target_tokens: np.ndarray
    text: str
    target: str


class LinkDetector:
    """Detects complete links ending at a given token.

    ``open_ids``/``mid_id``/``close_id`` default to the ids derived from the GPT-2 encoder
    (``[``/`` [``, ``](``, ``)``); ``close_candidates`` are the tokens that contain ``)``.
    ``max_chars`` bounds how far back a link may start (text + target).
    """

    def __init__(
        self,
        decode_token: Callable[[int], str] | None = None,
        open_ids: Sequence[int] | None = None,
        mid_id: int | None = None,
        close_id: int | None = None,
        close_candidates: frozenset[int] | None = None,
        max_chars: int = 400,
    ) -> None:
        ids = link_token_ids()
        self.open_ids = tuple(open_ids) if open_ids is not None else ids.open_ids
        self.mid_id = mid_id if mid_id is not None else ids.mid_id
        self.close_id = close_id if close_id is not None else ids.close_id
        self.close_candidates = close_candidates if close_candidates is not None else ids.close_candidates
        self.max_chars = max_chars
        if decode_token is None:
            enc = get_encoding()
            self._decode = lambda t: enc.decode_single_token_bytes(t).decode("utf-8", errors="replace")
        else:
            self._decode = decode_token
        self._cache: dict[int, str] = {}

    def _text(self, tok: int) -> str:
        s = self._cache.get(tok)
        if s is None:
            s = self._cache[tok] = self._decode(int(tok))
        return s

    def is_candidate(self, tok: int) -> bool:
        """Whether ``tok`` may close a link (contains ``)``)."""
        return int(tok) in self.close_candidates or ")" in self._text(tok)

    def detect_link_at_position(self, tokens: Sequence[int] | np.ndarray, end_pos: int) -> DetectedLink | None:
        """The link whose closing ``)`` lies in ``tokens[end_pos]``, or None.

        When that token holds several ``)``, the first one that completes a link wins.
        """
        if end_pos < 0 or end_pos >= len(tokens) or not self.is_candidate(int(tokens[end_pos])):
            return None
        # Characters of the window ending at end_pos, each tagged with its token index.
        chars: list[str] = []
        owner: list[int] = []
        i, total = end_pos, 0
        while i >= 0 and total <= self.max_chars:
            s = self._text(int(tokens[i]))
            chars[:0] = list(s)
            owner[:0] = [i] * len(s)
            total += len(s)
            i -= 1
        end_tok_first = owner.index(end_pos)
        for c in range(end_tok_first, len(chars)):
            if chars[c] == ")":
                link = self._match(chars, owner, c, tokens)
                if link is not None:
                    return link
        return None

    def _match(self, chars: list[str], owner: list[int], close: int, tokens: Sequence[int] | np.ndarray) -> DetectedLink | None:
        depth, j = 0, close
        while j >= 0:  # target: match parentheses back to the '(' of '](' (stack depth counter)
            ch = chars[j]
            if ch == "\n":
                return None
            if ch == ")":
                depth += 1
            elif ch == "(":
                depth -= 1
                if depth == 0:
                    break
            j -= 1
        if j < 1 or chars[j - 1] != "]":
            return None
        paren_open, bracket_close = j, j - 1
        depth, k = 0, bracket_close
        while k >= 0:  # text: match brackets back to '['
            ch = chars[k]
            if ch == "\n":
                return None
            if ch == "]":
                depth += 1
            elif ch == "[":
                depth -= 1
                if depth == 0:
                    break
            k -= 1
        if k < 0:
            return None
        text = "".join(chars[k + 1 : bracket_close])
        target = "".join(chars[paren_open + 1 : close])
        if "[" in target or "]" in target:
            # `[a](x [b](c) y)`: brackets cannot be part of a link destination (CommonMark), so
            # this `)` closes no link; the inner `[b](c)` was found at its own `)`
            return None
        bo, bc, po, pc = owner[k], owner[bracket_close], owner[paren_open], owner[close]
        arr = np.asarray(tokens)
        return DetectedLink(
            bracket_open_pos=bo,
            bracket_close_pos=bc,
            paren_open_pos=po,
            paren_close_pos=pc,
            link_text_tokens=np.array(arr[bo + 1 : bc]),
            target_tokens=np.array(arr[po + 1 : pc]),
            text=text,
            target=target,
        )

    def find_all(self, tokens: Sequence[int] | np.ndarray) -> list[DetectedLink]:
        """Every complete link of a finished token sequence, in order."""
        out: list[DetectedLink] = []
        for pos in range(len(tokens)):
            if self.is_candidate(int(tokens[pos])):
                link = self.detect_link_at_position(tokens, pos)
                if link is not None and (not out or link.paren_close_pos != out[-1].paren_close_pos):
                    out.append(link)
        return out
