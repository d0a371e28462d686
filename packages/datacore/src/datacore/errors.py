"""Exception types for errors a user can cause.

Every generator package derives its own errors from :class:`DatacoreError`, so the
shared CLI wrapper (:mod:`datacore.cli_support`) can print them as one clear line
and exit non-zero without a traceback.
"""

from __future__ import annotations

from typing import Any


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

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling (process pool, Ray)
        return (type(self), (self.path, self.line, self.reason))


class RecordError(JsonlError, TypeError):
    """A record JSON cannot carry exactly (NaN/inf, a set, a non-string key, an unknown type).

    Names the file being written (if any), the record's index in it and its ``id`` (if it has
    one) and the field path (``meta.scores[3]``).  Also a :class:`TypeError`, as msgspec's
    own refusal was.
    """

    def __init__(self, path: object, index: int, record_id: str | int | None, field: str, reason: str) -> None:
        self.index = index
        self.record_id = record_id
        self.field = field
        self._why = reason
        rid = f" (id {record_id!r})" if record_id is not None else ""
        text = f"record {index}{rid}: field {field}: {reason}"
        if path is None:
            Exception.__init__(self, text)
            self.path, self.line, self.reason = "", None, text
        else:
            super().__init__(path, None, text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path or None, self.index, self.record_id, self.field, self._why))


class ManifestError(DatacoreError):
    """A dataset directory whose manifest is missing, corrupt or does not match."""


class ConfigMismatchError(DatacoreError):
    """Resume refused: the existing run in the output directory used another config."""
