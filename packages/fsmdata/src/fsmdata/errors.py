"""Errors a user of fsmdata can cause; all derive from :class:`datacore.DatacoreError`.

The CLI (through :class:`datacore.cli_support.CliGroup`) prints them as a clear message and
exits non-zero, never with a traceback.
"""

from __future__ import annotations

from datacore import DatacoreError

__all__ = [
    "EmptyLanguageError",
    "FsmError",
    "FsmFormatError",
    "InfeasibleTargetError",
    "RegexSyntaxError",
    "UnsupportedConstructError",
]


class FsmError(DatacoreError):
    """Base class of fsmdata's user errors."""


def caret_message(what: str, pattern: str, pos: int) -> str:
    """``what`` followed by the pattern and a caret under position ``pos``."""
    pos = max(0, min(pos, len(pattern)))
    return f"{what} at position {pos}:\n  {pattern}\n  {' ' * pos}^"


class RegexSyntaxError(FsmError):
    """The pattern is not a well-formed regex of the supported dialect."""

    def __init__(self, reason: str, pattern: str, pos: int) -> None:
        self.reason, self.pattern, self.pos = reason, pattern, pos
        super().__init__(caret_message(f"regex syntax error: {reason}", pattern, pos))

    def __reduce__(self):  # keep picklable across worker processes
        return (type(self), (self.reason, self.pattern, self.pos))


class UnsupportedConstructError(RegexSyntaxError):
    """The pattern uses a construct that is not regular or not in the dialect (lookaround, backreference...)."""

    def __init__(self, reason: str, pattern: str, pos: int) -> None:
        self.reason, self.pattern, self.pos = reason, pattern, pos
        Exception.__init__(self, caret_message(f"unsupported construct: {reason}", pattern, pos))


class FsmFormatError(FsmError):
    """A JSON FSM (transition table) is malformed; the message names the field."""


class EmptyLanguageError(FsmError):
    """The FSM accepts no string at all, so nothing can be generated."""


class InfeasibleTargetError(FsmError):
    """A generation target (length range, class mix, reject mix) that no string can meet."""
