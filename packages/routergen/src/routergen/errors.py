"""Errors a user can cause in routergen: bad recipes, bad grammars, unusable arms.

All derive from :class:`datacore.DatacoreError`, so the CLI prints them as one line.
"""

from __future__ import annotations

from datacore import DatacoreError


class RoutergenError(DatacoreError):
    """Base class of routergen's user errors."""


class RecipeError(RoutergenError):
    """A malformed recipe; the message names the file, the line and the key at fault."""

    def __init__(self, path: object, line: int | None, key: str, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")

    def __reduce__(self):  # keep picklable despite the custom __init__
        return (RecipeError, (self.path, self.line, self.key, self.reason))


class GrammarError(RoutergenError):
    """A grammar that cannot be used: undefined, unreachable or non-terminating symbols,
    or an output schema the grammar cannot satisfy.  ``where`` names the rule (and line)."""


class NoArmsError(RoutergenError):
    """No arm of the recipe can run in this context (e.g. only LLM arms, run ``--offline``)."""
