"""The regex front end: a recursive-descent parser for fsmdata's documented regex dialect.

Two dialects share one grammar (alternation ``|``, groups, ``* + ? {m} {m,} {m,n} {,n}``):

* **character regexes** (:func:`parse_regex`): literals and escapes, ``.``, classes
  ``[...]`` with ranges and negation, ``\\d \\w \\s`` (and ``\\D \\W \\S``, ASCII
  semantics), capturing, named and non-capturing groups, ``(?i)`` / ``(?s)`` global flags,
  ``(?i:...)`` scoped flags, lazy quantifiers (same language under full match), ``^`` and
  ``$`` (or ``\\A`` / ``\\Z``) at the ends of a top-level branch.
* **token regexes** (:func:`parse_token_regex`): atoms are whole words separated by
  whitespace (quote a word with ``"..."`` if it has operator characters), ``.`` is any word
  of the vocabulary, ``[w1 w2]`` / ``[^w1 w2]`` are word classes.

Lookarounds ``(?=...) (?!...) (?<=...) (?<!...)`` parse to ``("look", kind, body)`` and are
compiled through the FSM algebra (:mod:`fsmdata.lookaround`); a quantified lookaround is
refused.  Backreferences, word boundaries, atomic groups, possessive quantifiers and
conditionals are not regular (or not in the dialect) and raise
:class:`~fsmdata.errors.UnsupportedConstructError` naming the construct and its position.

The AST is made of tuples: ``("set", items, negated)`` (items: ``(lo, hi)`` code point
intervals for characters, a frozenset of words for tokens), ``("cat", nodes)``,
``("alt", nodes)``, ``("rep", node, lo, hi_or_None)`` and ``("eps",)``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from .errors import RegexSyntaxError, UnsupportedConstructError

__all__ = ["MAX_NESTING", "MAX_REPEAT", "ParsedRegex", "deep_recursion", "parse_regex", "parse_token_regex"]

#: Largest bound allowed in ``{m,n}``: counted repetition is expanded into copies.
MAX_REPEAT = 1000
#: Deepest group nesting accepted (Python's ``re`` compiles 200 and fails near 1000).
MAX_NESTING = 500

Node = tuple[Any, ...]
DIGIT = ((48, 57),)
WORD = ((48, 57), (65, 90), (95, 95), (97, 122))
SPACE = ((9, 13), (32, 32))
MAX_CP = 0x10FFFF
_QUANT = re.compile(r"\{(\d*)(,(\d*))?\}")
_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}


@attrs.frozen
class ParsedRegex:
    """A parsed pattern: its AST, its dialect (``"char"`` or ``"token"``) and whether it
    needs an alphabet beyond its own symbols (``.`` or a negated class)."""

    pattern: str
    kind: str
    ast: Node
    needs_alphabet: bool


def complement(intervals: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Code point intervals not covered by ``intervals``."""
    out, lo = [], 0
    for a, b in sorted(intervals):
        if a > lo:
            out.append((lo, a - 1))
        lo = max(lo, b + 1)
    if lo <= MAX_CP:
        out.append((lo, MAX_CP))
    return tuple(out)


def _fold(intervals: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Add the other ASCII case of every letter in ``intervals`` (``(?i)``)."""
    extra = []
    for a, b in intervals:
        for lo, hi, shift in ((65, 90, 32), (97, 122, -32)):
            x, y = max(a, lo), min(b, hi)
            if x <= y:
                extra.append((x + shift, y + shift))
    return tuple(intervals) + tuple(extra)


class _Parser:
    """Recursive descent over ``self.p`` (the pattern) with position ``self.i``."""

    kind = "char"

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0
        self.needs_alphabet = False
        self.ignorecase = False
        self.dotall = False

    # -- helpers -------------------------------------------------------------------
    def err(self, reason: str, pos: int | None = None) -> RegexSyntaxError:
        return RegexSyntaxError(reason, self.p, self.i if pos is None else pos)

    def unsupported(self, reason: str, pos: int) -> UnsupportedConstructError:
        return UnsupportedConstructError(reason, self.p, pos)

    def enter(self, pos: int) -> None:
        """One group deeper; refuse nesting beyond :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise RegexSyntaxError(f"groups nested deeper than the limit of {MAX_NESTING}", self.p, pos)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def skip_ws(self) -> None:
        """Character regexes have significant whitespace; token regexes override this."""

    # -- grammar -------------------------------------------------------------------
    def parse(self) -> ParsedRegex:
        self.global_flags()
        node = self.alternation(top=True)
        if self.i < len(self.p):
            raise self.err("unbalanced parenthesis ')'")
        return ParsedRegex(self.p, self.kind, node, self.needs_alphabet)

    def global_flags(self) -> None:
        while self.p.startswith("(?", self.i):
            m = re.compile(r"\(\?([a-zA-Z]+)\)").match(self.p, self.i)
            if not m:
                return
            self.apply_flags(m.group(1), self.i + 2)
            self.i = m.end()

    def apply_flags(self, flags: str, pos: int) -> None:
        for k, f in enumerate(flags):
            if f == "i":
                self.ignorecase = True
            elif f == "s":
                self.dotall = True
            elif f in "aLu":
                pass  # ASCII/locale/unicode switches do not change these classes' meaning here
            else:
                raise self.unsupported(f"flag '(?{f})' (only i and s are supported)", pos + k)

    def alternation(self, top: bool = False) -> Node:
        branches = [self.sequence(top)]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence(top))
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def sequence(self, top: bool) -> Node:
        items: list[Node] = []
        self.skip_ws()
        if top and self.kind == "char":
            if self.peek() == "^":
                self.i += 1
            elif self.p.startswith("\\A", self.i):
                self.i += 2
        while True:
            self.skip_ws()
            c = self.peek()
            if c == "" or c == "|" or c == ")":
                break
            if self.kind == "char" and (c == "$" or self.p.startswith("\\Z", self.i)):
                width = 1 if c == "$" else 2
                after = self.p[self.i + width : self.i + width + 1]
                if top and after in ("", "|"):
                    self.i += width
                    continue
                raise self.unsupported("anchor not at the end of the pattern", self.i)
            if self.kind == "char" and c == "^":
                raise self.unsupported("anchor '^' not at the start of the pattern", self.i)
            items.append(self.quantified())
        if not items:
            return ("eps",)
        return items[0] if len(items) == 1 else ("cat", tuple(items))

    def quantifier(self) -> tuple[int, int | None] | None:
        """Parse a quantifier at ``self.i`` if there is one; return its bounds."""
        c = self.peek()
        qpos = self.i
        if c in ("*", "+", "?") and c:
            self.i += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        if c == "{":
            m = _QUANT.match(self.p, self.i)
            if not m or (m.group(1) == "" and m.group(2) is None):
                return None  # Python treats a '{' that starts no quantifier as a literal
            lo = int(m.group(1) or 0)
            if m.group(2) is None:
                hi: int | None = lo
            else:
                hi = int(m.group(3)) if m.group(3) else None
            if hi is not None and hi < lo:
                raise self.err("min repeat greater than max repeat", qpos)
            if max(lo, hi or 0) > MAX_REPEAT:
                raise self.err(f"repeat bound above {MAX_REPEAT}", qpos)
            self.i = m.end()
            return lo, hi
        return None

    def quantified(self) -> Node:
        node = self.atom()
        self.skip_ws()
        qpos = self.i
        bounds = self.quantifier()
        if bounds is None:
            return node
        if node[0] == "look":
            raise self.unsupported("quantified lookaround", qpos)
        if self.peek() == "+":
            raise self.unsupported("possessive quantifier", self.i)
        if self.peek() == "?":
            self.i += 1  # lazy: same language under full match
        self.skip_ws()
        pos = self.i
        if self.quantifier() is not None:
            raise self.err("multiple repeat", pos)
        return ("rep", node, bounds[0], bounds[1])

    def group(self) -> Node:
        open_pos = self.i
        self.i += 1
        saved = (self.ignorecase, self.dotall)
        if self.peek() == "?":
            rest = self.p[self.i + 1 : self.i + 4]
            if rest.startswith(":"):
                self.i += 2
            elif rest.startswith("P<") or (rest.startswith("<") and not rest.startswith(("<=", "<!"))):
                end = self.p.find(">", self.i)
                name = self.p[self.i + (3 if rest.startswith("P") else 2) : end] if end > 0 else ""
                if end < 0 or not name.isidentifier():
                    raise self.err("bad group name", self.i)
                self.i = end + 1
            elif rest.startswith(("=", "!", "<=", "<!")):
                kind = "<" + rest[1] if rest.startswith("<") else rest[0]
                self.i += 1 + len(kind)
                self.enter(open_pos)
                body = self.alternation()
                self.depth -= 1
                if self.peek() != ")":
                    raise self.err("missing ), unterminated subpattern", open_pos)
                self.i += 1
                self.ignorecase, self.dotall = saved
                return ("look", kind, body)
            elif rest.startswith("P="):
                raise self.unsupported("named backreference '(?P=name)'", open_pos)
            elif rest.startswith(">"):
                raise self.unsupported("atomic group '(?>'", open_pos)
            elif rest.startswith("("):
                raise self.unsupported("conditional group '(?(...)'", open_pos)
            elif rest.startswith("#"):
                end = self.p.find(")", self.i)
                if end < 0:
                    raise self.err("missing ), unterminated comment", open_pos)
                self.i = end + 1
                return ("eps",)
            else:
                m = re.compile(r"\?([a-zA-Z]*)(-[a-zA-Z]*)?([:)])").match(self.p, self.i)
                if not m:
                    raise self.err("unknown extension '(?'", open_pos)
                if m.group(3) == ")":
                    raise self.err("global flags not at the start of the expression", open_pos)
                if m.group(2):
                    raise self.unsupported("flag removal '(?-...:'", open_pos)
                self.apply_flags(m.group(1), self.i + 1)
                self.i = m.end()
        self.enter(open_pos)
        node = self.alternation()
        self.depth -= 1
        if self.peek() != ")":
            raise self.err("missing ), unterminated subpattern", open_pos)
        self.i += 1
        self.ignorecase, self.dotall = saved
        return node

    def charset(self, intervals: tuple[tuple[int, int], ...], negated: bool = False) -> Node:
        if self.ignorecase:
            intervals = _fold(intervals)
        if negated:
            self.needs_alphabet = True
        return ("set", tuple(sorted(intervals)), negated)

    def atom(self) -> Node:
        c = self.peek()
        if c == "(":
            return self.group()
        if c in "*+?":
            raise self.err("nothing to repeat")
        m = _QUANT.match(self.p, self.i) if c == "{" else None
        if m and (m.group(1) or m.group(2)):
            raise self.err("nothing to repeat")
        if c == "[":
            return self.char_class()
        if c == ".":
            self.i += 1
            self.needs_alphabet = True
            return ("set", () if self.dotall else ((10, 10),), True)
        if c == "\\":
            kind, value = self.escape(in_class=False)
            if kind == "class":
                iv, neg = value
                return self.charset(iv, neg)
            return self.charset(((value, value),))
        self.i += 1
        return self.charset(((ord(c), ord(c)),))

    def escape(self, in_class: bool) -> tuple[str, Any]:
        """Parse an escape at ``self.i``; return ``("char", cp)`` or ``("class", (intervals, negated))``."""
        pos = self.i
        self.i += 1
        c = self.peek()
        if c == "":
            raise self.err("bad escape (end of pattern)", pos)
        self.i += 1
        if c in "dws":
            return "class", ({"d": DIGIT, "w": WORD, "s": SPACE}[c], False)
        if c in "DWS":
            return "class", ({"D": DIGIT, "W": WORD, "S": SPACE}[c], True)
        if c in _SIMPLE_ESC:
            return "char", ord(_SIMPLE_ESC[c])
        if c == "b" and in_class:
            return "char", 8
        if c in "bB":
            raise self.unsupported(f"word boundary '\\{c}'", pos)
        if c in "AZ" and not in_class:
            raise self.unsupported(f"anchor '\\{c}' not at an end of the pattern", pos)
        if c == "x" or c == "u" or c == "U":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.p[self.i : self.i + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.err(f"incomplete escape \\{c}{digits}", pos)
            self.i += width
            return "char", int(digits, 16)
        if c == "0":
            digits = "0"
            while len(digits) < 3 and self.peek() in "01234567" and self.peek():
                digits += self.peek()
                self.i += 1
            return "char", int(digits, 8)
        if c.isdigit():
            if in_class:
                raise self.err(f"bad escape \\{c}", pos)
            raise self.unsupported(f"backreference '\\{c}'", pos)
        if c in "kg" and not in_class:
            raise self.unsupported(f"backreference '\\{c}'", pos)
        if c.isascii() and c.isalnum():
            raise self.err(f"bad escape \\{c}", pos)
        return "char", ord(c)

    def char_class(self) -> Node:
        open_pos = self.i
        self.i += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.i += 1
        intervals: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.peek()
            if c == "":
                raise self.err("unterminated character set", open_pos)
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo_pos = self.i
            if c == "\\":
                kind, value = self.escape(in_class=True)
                if kind == "class":
                    iv, neg = value
                    intervals.extend(complement(iv) if neg else iv)
                    continue
                lo = value
            else:
                lo = ord(c)
                self.i += 1
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                if self.peek() == "\\":
                    kind, value = self.escape(in_class=True)
                    if kind == "class":
                        raise self.err("bad character range", lo_pos)
                    hi = value
                else:
                    hi = ord(self.peek())
                    self.i += 1
                if hi < lo:
                    raise self.err("bad character range", lo_pos)
                intervals.append((lo, hi))
            else:
                intervals.append((lo, lo))
        return self.charset(tuple(intervals), negated)


class _TokenParser(_Parser):
    """Token regexes: words instead of characters; whitespace separates words."""

    kind = "token"
    _OPS = set("()|*+?{}[]\"'")

    def skip_ws(self) -> None:
        while self.peek() and self.peek().isspace():
            self.i += 1

    def global_flags(self) -> None:
        self.skip_ws()

    def word(self) -> str:
        c = self.peek()
        if c in ("'", '"'):
            end = self.p.find(c, self.i + 1)
            if end < 0:
                raise self.err("unterminated quoted word")
            w = self.p[self.i + 1 : end]
            if not w:
                raise self.err("empty quoted word")
            self.i = end + 1
            return w
        start = self.i
        while self.peek() and not self.peek().isspace() and self.peek() not in self._OPS:
            self.i += 1
        if self.i == start:
            raise self.err(f"expected a word, got {c!r}")
        return self.p[start : self.i]

    def group(self) -> Node:
        open_pos = self.i
        if self.peek(1) == "?":
            raise self.unsupported("group extension '(?' in a token regex", open_pos)
        self.i += 1
        self.enter(open_pos)
        node = self.alternation()
        self.depth -= 1
        self.skip_ws()
        if self.peek() != ")":
            raise self.err("missing ), unterminated subpattern", open_pos)
        self.i += 1
        return node

    def atom(self) -> Node:
        self.skip_ws()
        c = self.peek()
        if c == "(":
            return self.group()
        if c in "*+?{":
            raise self.err("nothing to repeat")
        if c == "[":
            open_pos = self.i
            self.i += 1
            negated = self.peek() == "^"
            if negated:
                self.i += 1
                self.needs_alphabet = True
            words = set()
            while True:
                self.skip_ws()
                if self.peek() == "":
                    raise self.err("unterminated word class", open_pos)
                if self.peek() == "]":
                    self.i += 1
                    break
                words.add(self.word())
            return ("set", frozenset(words), negated)
        if c == "." and (self.peek(1) == "" or self.peek(1).isspace() or self.peek(1) in self._OPS):
            self.i += 1
            self.needs_alphabet = True
            return ("set", frozenset(), True)
        if c == "\\":
            raise self.err("escapes are not used in token regexes; quote the word instead")
        return ("set", frozenset([self.word()]), False)


@contextmanager
def deep_recursion(frames: int = 8 * MAX_NESTING + 2000) -> Iterator[None]:
    """Raise the interpreter's recursion limit for the parser and the compiler: each group
    level costs a few Python frames, so :data:`MAX_NESTING` levels need more than the
    default 1,000 (Python 3.11+ keeps Python-to-Python calls off the C stack)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, frames))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def parse_regex(pattern: str) -> ParsedRegex:
    """Parse a character regex of fsmdata's dialect (see the module docstring)."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
    with deep_recursion():
        return _Parser(pattern).parse()


def parse_token_regex(pattern: str) -> ParsedRegex:
    """Parse a token-level regex whose atoms are whole words (see the module docstring)."""
    with deep_recursion():
        return _TokenParser(pattern).parse()
