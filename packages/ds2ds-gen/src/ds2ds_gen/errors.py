"""Exception types for errors a user of ds2ds-gen can cause.

All derive from :class:`datacore.DatacoreError`, so the CLI prints them as one line and exits 1.
"""

from __future__ import annotations

from datacore import DatacoreError


class Ds2dsError(DatacoreError):
    """Base class of ds2ds-gen user errors."""


class ConfigError(Ds2dsError):
    """A configuration value out of range; the message names the field, value and what is allowed."""


class TokenizerError(Ds2dsError):
    """The offline GPT-2 vocabulary files are missing or do not match their recorded sha256."""


class CorpusError(Ds2dsError):
    """A markdown folder or pretokenized corpus that cannot be read (names the file at fault)."""


class CheckpointError(Ds2dsError):
    """A missing, corrupt or incompatible model checkpoint (names the file at fault)."""


class PromptTooLongError(Ds2dsError):
    """A prompt that does not fit the model's context or the per-document token limit."""
