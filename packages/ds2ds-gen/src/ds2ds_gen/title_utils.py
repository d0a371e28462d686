"""Title utilities: the normalized+hashed file names of corpus documents.

A document titled ``"New Topic"`` is stored as ``new_topic_<6 hex>.md``: the title lowercased,
spaces to underscores, everything but ``[a-z0-9_]`` dropped, then ``_`` and the first six hex
digits of the sha256 of the *original* title (UTF-8). Because only ``[a-z0-9_]`` survive, a
generated title can never name a path outside the output folder (``../x`` becomes ``x_<hash>``).
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "create_filename",
    "generate_title_hash",
    "normalize_title",
    "safe_filename",
    "strip_hash",
    "title_matches_filename",
]

_NON_WORD = re.compile(r"[^a-z0-9_]")
_HASH_SUFFIX = re.compile(r"_[0-9a-f]{6}$")
# File systems limit names to 255 bytes; keep room for the hash and an extension.
_MAX_STEM = 200


def normalize_title(title: str) -> str:
    """Lowercase, spaces to underscores, keep only ASCII alphanumerics and underscores."""
    return _NON_WORD.sub("", title.lower().replace(" ", "_"))


def generate_title_hash(title: str) -> str:
    """First 6 hex digits of sha256 of the original title (deterministic across runs)."""
    return hashlib.sha256(title.encode("utf-8")).hexdigest()[:6]


def create_filename(title: str) -> str:
    """``f"{normalize_title(title)}_{generate_title_hash(title)}"``, e.g. ``new_topic_3a7f2c``.

    Very long normalized titles are cut to 200 characters (the hash keeps names distinct).
    """
    return f"{normalize_title(title)[:_MAX_STEM]}_{generate_title_hash(title)}"


def strip_hash(title_with_hash: str) -> str:
    """Remove a trailing ``_[0-9a-f]{6}``: ``"new_topic_3a7f2c"`` -> ``"new_topic"``."""
    return _HASH_SUFFIX.sub("", title_with_hash)


def title_matches_filename(normalized_with_hash: str, original_title: str) -> bool:
    """Whether ``original_title`` is the title that ``normalized_with_hash`` was made from."""
    return create_filename(original_title) == normalized_with_hash


def safe_filename(title: str, ext: str = ".md") -> str:
    """A file name for ``title`` that is safe to join to any folder (no separators, no ``..``)."""
    return create_filename(title) + ext
