"""Terms, single steps, normal forms and traces (the Rust core does the work).

Terms cross the boundary as canonical text: ``term := INDEX | "\\" term | "(" term " " term ")"``
with de Bruijn indices (0 = nearest binder), e.g. identity ``\\0`` and omega
``(\\(0 0) \\(0 0))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from . import _core
from .errors import LambdaSyntaxError, LambdaValueError

DEFAULT_MAX_STEPS = 1000
DEFAULT_MAX_SIZE = 10_000


def _wrap(exc: ValueError, text: str) -> LambdaSyntaxError:
    # The text as typed (repr would double every backslash and shift the positions the message names).
    return LambdaSyntaxError(f'term "{text[:60]}{"..." if len(text) > 60 else ""}": {exc}')


@attrs.frozen(eq=True, hash=True)
class Term:
    """A closed lambda term in canonical de Bruijn text.

    Build one with :func:`parse` (``Term("...")`` also validates).  ``size`` counts nodes,
    ``depth`` is the tree height (a variable has depth 0), ``redex`` the pre-order position
    of the normal-order redex (``None`` in normal form), ``named`` a readable form.
    """

    text: str = attrs.field()

    @text.validator
    def _check(self, _attr: object, value: str) -> None:
        if not isinstance(value, str):
            raise LambdaSyntaxError(f"a term must be a str, got {type(value).__name__}")
        try:
            canonical = _core.canonical(value)
        except ValueError as e:
            raise _wrap(e, value) from None
        if canonical != value:  # pragma: no cover - canonical text parses only to itself
            raise LambdaSyntaxError(f"term {value!r} is not canonical (expected {canonical!r})")

    def _info(self) -> tuple[int, int, str, int | None]:
        return _core.describe(self.text)

    @property
    def size(self) -> int:
        """Number of nodes."""
        return self._info()[0]

    @property
    def depth(self) -> int:
        """Tree height."""
        return self._info()[1]

    @property
    def named(self) -> str:
        """Readable form with named binders, e.g. ``λa. λb. a b``."""
        return self._info()[2]

    @property
    def redex(self) -> int | None:
        """Pre-order index of the leftmost-outermost redex, or None."""
        return self._info()[3]

    @property
    def is_normal(self) -> bool:
        """True if the term has no redex."""
        return self.redex is None

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Term:
    """Parse canonical text into a :class:`Term`; raises :class:`LambdaSyntaxError` with the position."""
    return Term(text)


def _text(term: Term | str) -> str:
    if isinstance(term, Term):
        return term.text
    try:
        return _core.canonical(term)
    except ValueError as e:
        raise _wrap(e, term) from None


def _caps(max_steps: object, max_size: object) -> None:
    """Refuse caps that are not non-negative integers (the core takes unsigned ones)."""
    for name, v in (("max_steps", max_steps), ("max_size", max_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 2**63:
            raise LambdaValueError(f"{name} must be an integer >= 0, got {v!r}")


def reduce_step(term: Term | str) -> tuple[Term, int] | None:
    """One normal-order step: ``(reduct, redex position)``, or ``None`` for a normal form."""
    r = _core.reduce_step(_text(term))
    return None if r is None else (Term(r[0]), r[1])


@attrs.frozen
class Normalized:
    """Result of :func:`normalize`: the last term, steps taken and why it stopped."""

    term: Term
    steps: int
    status: str


def normalize(term: Term | str, max_steps: int = DEFAULT_MAX_STEPS, max_size: int = DEFAULT_MAX_SIZE) -> Normalized:
    """Reduce in normal order to a normal form (``status="normal_form"``) or a cap
    (``"step_cap"``, ``"size_cap"``)."""
    _caps(max_steps, max_size)
    t, steps, status = _core.normalize(_text(term), max_steps, max_size)
    return Normalized(Term(t), steps, status)


@attrs.frozen
class Trace:
    """A reduction trace: ``terms[i+1]`` is the reduct of ``terms[i]`` at ``redexes[i]``.

    ``status`` is ``normal_form``, ``step_cap``, ``size_cap`` (the next reduct would exceed
    the size cap; that step is not taken) or ``cycle`` (the last term repeats an earlier one).
    """

    terms: tuple[Term, ...]
    redexes: tuple[int, ...]
    status: str

    @property
    def steps(self) -> int:
        """Number of steps."""
        return len(self.redexes)

    def pairs(self) -> list[tuple[Term, Term]]:
        """(input, target) per step."""
        return list(zip(self.terms, self.terms[1:]))


def _strategy(strategy: object) -> str:
    if strategy not in _core.strategies():
        raise LambdaValueError(f"strategy must be one of {', '.join(_core.strategies())}, got {strategy!r}")
    return str(strategy)


def trace(
    term: Term | str, max_steps: int = DEFAULT_MAX_STEPS, max_size: int = DEFAULT_MAX_SIZE, strategy: str = "normal"
) -> Trace:
    """Trace the reduction of ``term`` with cycle detection and caps; ``strategy`` is one of
    ``normal`` (leftmost-outermost, the default), ``call_by_name``, ``call_by_value``,
    ``applicative`` (leftmost-innermost) or ``head``.  A strategy with no step left ends the
    trace as ``normal_form`` if no redex remains, else ``strategy_normal_form``."""
    _caps(max_steps, max_size)
    terms, redexes, status = _core.trace(_text(term), max_steps, max_size, _strategy(strategy))
    # The core printed these terms itself: skip re-validation.
    return Trace(tuple(_trusted(t) for t in terms), tuple(redexes), status)


def _trusted(text: str) -> Term:
    t = object.__new__(Term)
    object.__setattr__(t, "text", text)
    return t


def trace_many(
    terms: Sequence[str], max_steps: int = DEFAULT_MAX_STEPS, max_size: int = DEFAULT_MAX_SIZE, strategy: str = "normal"
) -> list[tuple[str, int, str, list[int]]]:
    """Trace many terms in one call: ``(last term, steps, status, redex positions)`` each.

    A term that does not parse raises :class:`LambdaSyntaxError` naming its index in
    ``terms`` and quoting it."""
    _caps(max_steps, max_size)
    try:
        return _core.trace_many(list(terms), max_steps, max_size, _strategy(strategy))
    except ValueError as e:
        raise LambdaSyntaxError(str(e)) from None


def count_terms(size: int, depth: int) -> int:
    """Exact number of closed terms with ``size`` nodes and depth at most ``depth``.

    Raises :class:`LambdaValueError` for negative arguments or tables too big to build
    (size <= 5,000 and size * min(depth, size) <= 30,000)."""
    _non_negative(size=size, depth=depth)
    try:
        return int(_core.count_terms(size, depth))
    except ValueError as e:
        raise LambdaValueError(str(e)) from None


def _non_negative(**values: object) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 2**63:
            raise LambdaValueError(f"{name} must be an integer >= 0, got {v!r}")


def sample_terms(size: int, depth: int, n: int, seed: int = 0) -> list[str]:
    """``n`` uniform random closed terms of ``size`` nodes and depth <= ``depth`` (canonical text).

    Raises :class:`LambdaValueError` (a ``ValueError``) for an empty cell, tables too big to
    build (see :func:`count_terms`) or ``n`` above 10,000,000."""
    _non_negative(size=size, depth=depth, n=n)
    try:
        return _core.sample_terms(size, depth, n, seed & (2**64 - 1))
    except ValueError as e:
        raise LambdaValueError(str(e)) from None
