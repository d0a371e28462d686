"""Errors a lambdagen user can cause; all derive from :class:`datacore.DatacoreError`."""

from __future__ import annotations

from datacore import DatacoreError


class LambdaSyntaxError(DatacoreError):
    """A term that is not in the canonical text form (the message names the position)."""


class ScheduleError(DatacoreError):
    """A bad ``--schedule`` / ``--quotas`` string or an infeasible (size, depth) cell."""


class LambdaValueError(DatacoreError, ValueError):
    """A bad argument to a term function (negative cap, a cell too big to count, too many samples)."""
