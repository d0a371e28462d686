"""Content-addressed disk cache of successful responses.

The key is the sha256 of the canonical JSON of the request's answer-deciding fields (see
:meth:`LLMRequest.cache_key`), so it survives restarts and code edits: an identical re-run (or a
run resumed after a crash) reads every answer back and makes zero API calls.  A file lives at
``cache_dir/ab/abcdef....json`` (the first two hex digits fan the files out over 256 folders) and
is written to a temporary name then renamed, so a crash never leaves half a file under a real key.
Only successes are stored; the file holds the request fields and the response, never credentials.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .types import LLMRequest, LLMResponse

__all__ = ["ResponseCache"]


class ResponseCache:
    """Disk cache ``key -> response`` under ``root`` (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.corrupt = 0  # unparsable entries seen (treated as misses and overwritten)
        self.read_errors = 0  # entries that could not be read at all (permissions, not a folder)

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> LLMResponse | None:
        """The cached response for ``key``, or None on a miss or an unreadable entry."""
        p = self.path_for(key)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            self.read_errors += 1  # unreadable cache folder: a miss, not a failed request
            return None
        try:
            entry = json.loads(data)
            if entry.get("key") != key:
                raise ValueError("key mismatch")
            return LLMResponse.from_dict(entry["response"], cached=True)
        except (ValueError, KeyError, TypeError, AttributeError):
            # A torn or hand-edited file must not poison the run: count it and re-ask the model.
            self.corrupt += 1
            return None

    def put(self, key: str, req: LLMRequest, resp: LLMResponse) -> Path:
        """Store a successful ``resp`` for ``req`` atomically; returns the entry's path."""
        if not resp.ok:
            raise ValueError("only successful responses are cached")
        p = self.path_for(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        entry: dict[str, Any] = {"key": key, "request": req.key_fields(), "response": resp.to_dict()}
        body = json.dumps(entry, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return p

    def __len__(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(1 for _ in self.root.glob("??/*.json"))
