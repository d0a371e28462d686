"""Exception types for errors a user can cause.

Every generator package derives its own errors from :class:`DatacoreError`, so the
shared CLI wrapper (:mod:`datacore.cli_support`) can print them as one clear line
and exit non-zero without a traceback.
"""

from __future__ import annotations


class DatacoreError(Exception):
    """Base class for errors caused by user input (bad file, bad config, bad option)."""


class JsonlError(DatacoreError):
    """A malformed JSONL line or an unreadable JSONL file; names the file and line."""

    def __init__(self, path: object, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class ManifestError(DatacoreError):
    """A dataset directory whose manifest is missing, corrupt or does not match."""


class ConfigMismatchError(DatacoreError):
    """Resume refused: the existing run in the output directory used another config."""
