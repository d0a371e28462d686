"""Streaming JSONL reading and writing: the one record encoder of the house (orjson).

Every record line datacore writes is made here, by one library: orjson, compact, keys in the
record's own order, exponents as ``1e300`` (datacore 0.1's bytes, kept), and strict: NaN,
infinities, sets, non-string keys, integers beyond 64 bits and unknown types are refused with
a :class:`RecordError` naming the record and the field path.  A record's ``id`` (when the
generator gives none) is the xxh3-128 of exactly the bytes the line then carries after it
(:func:`encode_with_id`), so the canonical bytes are made once per record.  Reading uses orjson
too (``orjson.loads`` per line ran as fast as msgspec's block decoding here; figures in
docs/benchmarks.md).

Compression follows the file name: ``.jsonl`` (plain), ``.jsonl.gz`` (gzip, written with
``mtime=0`` so output is byte-reproducible) and ``.jsonl.zst`` (zstandard).  Writes go to
``NAME.tmp`` and are renamed to ``NAME`` only when complete, so a reader never sees half a
file and a killed run leaves no truncated output under the final name.
"""

from __future__ import annotations

import gzip
import io
import itertools
import math
import os
import zlib
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import IO, Any, Literal
from uuid import UUID

import numpy as np
import orjson
import xxhash
import zstandard

from .errors import JsonlError, RecordError

_FLUSH_BYTES = 1 << 20
_CHECK_BATCH = 256
_BATCH = 1024
ZSTD_LEVEL = 3


def zstd_compressor(level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressor:
    """The zstd compressor datacore writes with: frames carry a content checksum (xxh64).

    The checksum is what lets a reader tell a flipped bit from data: without it a corrupt block
    can decompress to different but well-formed records.  Other writers of ``.jsonl.zst`` shard
    files should use this too, so every file datacore reads back is checked.
    """
    return zstandard.ZstdCompressor(level=level, write_checksum=True)


_orjson_dumps = orjson.dumps
_LINE_OPT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LINE_NL_OPT = _LINE_OPT | orjson.OPT_APPEND_NEWLINE
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_NULL_BEFORE = b":,["
_NULL_AFTER = b",]}"
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError)


def _line_hook(obj: Any) -> Any:
    """orjson's hook: numpy arrays and scalars become lists / numbers (as msgspec's did); the rest is refused."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"type {type(obj).__name__} is not supported")


def _encode_line(record: Any) -> bytes:
    """orjson's compact bytes of ``record`` with 0.1's exponents (no NaN check: see _finish_batch)."""
    body = _orjson_dumps(record, default=_line_hook, option=_LINE_OPT)
    # memchr for "+": only a line holding one can hold an "e+" exponent to rewrite
    return _fix_exponents(body) if b"+" in body else body


def _fix_exponents(buf: bytes | bytearray) -> bytes:
    """Rewrite orjson's ``e+`` exponents as msgspec's ``e`` (outside strings only)."""
    out = bytearray()
    i, last = 0, 0
    in_str = False
    while True:
        j = buf.find(b"+", i)
        if j == -1:
            break
        # string state at j: count unescaped quotes between i and j
        k = i
        while True:
            q = buf.find(b'"', k, j)
            if q == -1:
                break
            bs = 0
            while buf[q - 1 - bs] == 92:  # backslash
                bs += 1
            if bs % 2 == 0:
                in_str = not in_str
            k = q + 1
        if not in_str and j > 0 and buf[j - 1] in b"eE" and j > 1 and 48 <= buf[j - 2] <= 57:
            out += buf[last:j]
            last = j + 1
        i = j + 1
    out += buf[last:]
    return bytes(out)


def _null_candidates(buf: bytes | bytearray, start: int, end: int) -> Any:
    """Positions of ``b"null"`` in ``buf[start:end]`` (numpy: CPython's search for this 4-byte
    needle ran at ~2 ns/byte here on JSON text, numpy's compare-and-filter ~5x faster)."""
    a = np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start)
    idx = np.flatnonzero(a[:-3] == 110)  # "n"
    if idx.size:
        idx = idx[(a[idx + 1] == 117) & (a[idx + 2] == 108) & (a[idx + 3] == 108)]  # "ull"
    return idx + start


def _has_null_token(buf: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """Whether compact JSON ``buf[start:end]`` holds a ``null`` value (a cheap filter: a string
    holding ``:null,`` is a false positive, resolved by the walk)."""
    end = len(buf) if end is None else end
    if end - start < 4:
        return False
    if end - start > 2048:
        # most lines hold no null at all: one memmem says so ~7x faster than numpy's filter
        if buf.find(b"null", start, end) == -1:
            return False
        hits = _null_candidates(buf, start, end).tolist()
    else:
        hits = []
        i = buf.find(b"null", start, end)
        while i != -1:
            hits.append(i)
            i = buf.find(b"null", i + 4, end)
    for i in hits:
        if (i == start or buf[i - 1] in _NULL_BEFORE) and (i + 4 >= end or buf[i + 4] in _NULL_AFTER):
            return True
    return False


def _fmt_key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def find_unencodable(value: Any, path: str = "") -> tuple[str, str] | None:
    """Return ``(field path, reason)`` for the first value JSON cannot carry exactly, or ``None``.

    Refused: NaN and infinities, sets and frozensets, dict keys that are not strings, ints
    outside 64 bits and any type but str/int/float/bool/None/list/tuple/dict (numpy arrays and
    scalars, enums and UUIDs are accepted: they are written as lists, numbers and strings).
    """
    tp = type(value)
    if tp is str or tp is int or tp is bool or value is None:
        if tp is int and not _INT_MIN <= value <= _INT_MAX:
            return path, f"integer {value} does not fit in 64 bits"
        if tp is str:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path, "string holds a lone surrogate (not valid UTF-8)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return path or "<record>", f"key {k!r} is {type(k).__name__}, not str"
            if find_unencodable(k):
                return path or "<record>", f"key {k!r} holds a lone surrogate (not valid UTF-8)"
            bad = find_unencodable(v, _fmt_key(path, k))
            if bad:
                return bad
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = find_unencodable(v, f"{path}[{i}]")
            if bad:
                return bad
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return path, f"{value!r} is not a JSON number"
        return None
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" or value.dtype.kind == "c":
            bad_at = np.argwhere(~np.isfinite(value))
            if len(bad_at):
                idx = "".join(f"[{int(i)}]" for i in bad_at[0])
                return (
                    f"{path}{idx}",
                    f"{complex(value[tuple(bad_at[0])]) if value.dtype.kind == 'c' else float(value[tuple(bad_at[0])])!r} is not a JSON number",
                )
        if value.dtype.kind in "biuf":
            return None
        return find_unencodable(value.tolist(), path)
    if isinstance(value, np.generic):
        return find_unencodable(value.item(), path)
    if isinstance(value, (str, int)):  # str/int subclasses, IntEnum
        return None
    if isinstance(value, (Enum, UUID)):
        return None
    if isinstance(value, (set, frozenset)):
        return path, f"a {tp.__name__} has no order JSON can keep; use a sorted list"
    return path, f"type {tp.__name__} is not supported (use str, int, float, bool, None, list or dict)"


def _record_error(path: Any, index: int, record: Any, where: str, reason: str) -> RecordError:
    rid = record.get("id") if isinstance(record, dict) else None
    return RecordError(path, index, rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None, where, reason)


def _encode_error(path: Any, index: int, record: Any, e: Exception) -> RecordError:
    bad = find_unencodable(record)
    if bad and "not a JSON number" in bad[1]:  # NaN is not what the encoder refused: look past it
        bad = None
    return _record_error(path, index, record, *(bad or ("<record>", str(e))))


def _finish_batch(
    records: list[Any], buf: bytearray, start: int, path: Any, first_index: int, allow_nan: bool, *, fix: bool = False
) -> None:
    """Check ``buf[start:]``, the records' lines (each ending with a newline): :class:`RecordError`
    for a NaN/inf among ``records`` (orjson writes them as ``null``; one scan finds candidates).
    ``fix``: also rewrite orjson's ``e+`` exponents in place (lines not yet fixed one by one)."""
    if fix and buf.find(b"+", start) != -1:
        fixed = _fix_exponents(bytes(buf[start:]))
        del buf[start:]
        buf += fixed
    if not allow_nan and _has_null_token(buf, start):
        pos = start
        for i, rec in enumerate(records):
            nl = buf.index(b"\n", pos)
            if _has_null_token(buf, pos, nl):
                bad = find_unencodable(rec)
                if bad:
                    raise _record_error(path, first_index + i, rec, *bad)
            pos = nl + 1


def compression_of(path: str | os.PathLike[str]) -> str | None:
    """Return ``"gz"``, ``"zst"`` or ``None`` from a file name's extension."""
    name = str(path)
    if name.endswith(".gz"):
        return "gz"
    if name.endswith(".zst"):
        return "zst"
    return None


def encode_with_id(record: dict[str, Any], *, allow_nan: bool = False) -> tuple[str, bytes]:
    """The line of a record that has no ``id`` yet, and that id, from one encoding.

    The id is the xxh3-128 hex of the record's own line bytes (without the newline); the line
    written is ``{"id":"<id>",`` followed by those same bytes after their opening brace, so
    anyone can check an id from the line alone.  Refusals as for :func:`dumps`.
    """
    line = dumps(record, allow_nan=allow_nan)
    body = line[:-1]
    rid = xxhash.xxh3_128_hexdigest(body)
    head = b'{"id":"' + rid.encode() + b'"'
    return rid, head + (b"}\n" if body == b"{}" else b"," + line[1:])


def dumps(record: Any, *, allow_nan: bool = False) -> bytes:
    """Serialize one record as a JSONL line (with the trailing newline).

    Raises :class:`RecordError` (naming the field) for a value JSON cannot carry exactly:
    NaN/inf (unless ``allow_nan``: written as ``null``), sets, non-string keys, unknown types.
    """
    try:
        line = bytearray(_encode_line(record) + b"\n")
    except _ENCODE_ERRORS as e:
        raise _encode_error(None, 0, record, e) from None
    _finish_batch([record], line, 0, None, 0, allow_nan)
    return bytes(line)


class JsonlWriter:
    """Write records to a JSONL file atomically (temporary name, renamed on success).

    Use as a context manager; if the block raises, the temporary file is removed and the
    final name is left untouched.  A record JSON cannot carry exactly raises
    :class:`RecordError` naming its index in the file, its ``id`` and the field: a set, a
    non-string key or an unknown type at once, from :meth:`write` (nothing of it is written);
    a NaN or infinity from the batch check, which runs every few hundred records and at the
    end, so it may come from a later ``write()`` or from closing; the file is then not
    written, even if the error was caught.  ``allow_nan=True`` writes NaN/inf as ``null``.
    Do not mutate a record after writing it.
    """

    def __init__(self, path: str | os.PathLike[str], zstd_level: int = ZSTD_LEVEL, *, allow_nan: bool = False) -> None:
        self.path = Path(path)
        self.allow_nan = allow_nan
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.count = 0
        self._zstd_level = zstd_level
        self._raw: IO[bytes] | None = None
        self._stream: Any = None
        # One growing bytearray (a list of thousands of bytes objects joined later ran ~8x slower
        # here: allocator behaviour).
        self._buf = bytearray()
        # Records written since the last batch check, and where their lines start in _buf.
        self._pending: list[Any] = []
        self._pending_start = 0
        self._failed: RecordError | None = None

    def __enter__(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp_path, "wb")
        kind = compression_of(self.path)
        if kind == "gz":
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
        elif kind == "zst":
            self._stream = zstd_compressor(self._zstd_level).stream_writer(self._raw, closefd=False)
        else:
            self._stream = self._raw
        return self

    def write(self, record: Any) -> None:
        """Append one record."""
        if self._failed is not None:
            raise self._failed
        try:
            line = _orjson_dumps(record, default=_line_hook, option=_LINE_NL_OPT)
        except _ENCODE_ERRORS as e:
            raise _encode_error(self.path, self.count, record, e) from None
        # the same bytes as _encode_line (+ newline), in one call: the hot path of every writer
        self._buf += _fix_exponents(line) if b"+" in line else line
        self.count += 1
        pending = self._pending
        pending.append(record)
        if len(pending) >= _CHECK_BATCH:
            self._check_pending()
            if len(self._buf) >= _FLUSH_BYTES:
                self._flush()

    def _check_pending(self) -> None:
        """Finish the lines written since the last check (exponents, NaN)."""
        pending = self._pending
        if not pending:
            return
        try:
            _finish_batch(pending, self._buf, self._pending_start, self.path, self.count - len(pending), self.allow_nan)
        except RecordError as e:
            self._failed = e
            raise
        pending.clear()
        self._pending_start = len(self._buf)

    def write_many(self, records: Iterable[Any]) -> None:
        """Append many records: the same bytes and checks as :meth:`write`, ``_BATCH`` at a time
        (all of a batch, or none of it), with one exponent and one NaN scan per batch."""
        if self._failed is not None:
            raise self._failed
        self._check_pending()
        it = iter(records)
        buf = self._buf
        dumps, hook, opt = _orjson_dumps, _line_hook, _LINE_NL_OPT
        while batch := list(itertools.islice(it, _BATCH)):
            start = len(buf)
            try:
                for rec in batch:
                    buf += dumps(rec, default=hook, option=opt)
            except _ENCODE_ERRORS as e:
                del buf[start:]
                for i, rec in enumerate(batch):  # the record refused, by itself
                    try:
                        _encode_line(rec)
                    except _ENCODE_ERRORS as e1:
                        raise _encode_error(self.path, self.count + i, rec, e1) from None
                raise _encode_error(self.path, self.count, None, e) from None
            try:
                _finish_batch(batch, buf, start, self.path, self.count, self.allow_nan, fix=True)
            except RecordError:
                del buf[start:]
                raise
            self.count += len(batch)
            self._pending_start = len(buf)
            if len(buf) >= _FLUSH_BYTES:
                self._flush()

    def write_line_bytes(self, line: bytes) -> None:
        """Append one already-serialized line (must end with a newline; not checked).

        For pre-encoded fast paths; the conformance suite's ``encoding`` check proves that a
        generator's lines are the bytes :func:`dumps` makes of the records they decode to."""
        self._check_pending()
        self._buf += line
        self._pending_start = len(self._buf)
        self.count += 1
        if len(self._buf) >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        assert self._stream is not None
        self._check_pending()
        if self._buf:
            self._stream.write(self._buf)
            self._buf.clear()
            self._pending_start = 0

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._stream is not None and self._raw is not None
        ok = exc_type is None and self._failed is None
        try:
            if ok:
                try:
                    self._flush()
                except RecordError:
                    ok = False
            if self._stream is not self._raw:
                self._stream.close()
            self._raw.close()
        finally:
            if ok:
                os.replace(self.tmp_path, self.path)
            else:
                self.tmp_path.unlink(missing_ok=True)
        if self._failed is not None and exc is not self._failed:
            raise self._failed  # refused (and perhaps caught): the file is not written


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any], *, allow_nan: bool = False) -> int:
    """Write all records to ``path`` atomically; return how many were written.

    A record JSON cannot carry exactly raises :class:`RecordError` and leaves no file.
    """
    with JsonlWriter(path, allow_nan=allow_nan) as w:
        w.write_many(records)
    return w.count


def open_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a (possibly compressed) file for binary reading, by extension."""
    kind = compression_of(path)
    raw = open(path, "rb")
    if kind == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "zst":
        return io.BufferedReader(_ZstdReader(raw))
    return raw


class _ZstdReader(io.RawIOBase):
    """Decompress zstd frames, raising on a truncated stream (zstandard's reader would stop silently)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if self._dobj.eof and (chunk or self._dobj.unused_data):  # another frame follows
                chunk = self._dobj.unused_data + chunk
                self._dobj = self._dctx.decompressobj()
            if not chunk:
                if self._started and not self._dobj.eof:
                    raise EOFError("zstd stream ends in the middle of a frame")
                return 0
            self._started = True
            self._pending = self._dobj.decompress(chunk)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _blocks(f: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """Yield runs of whole lines (each ends with a newline, except a last unterminated line)."""
    rest = b""
    while True:
        chunk = f.read(size)
        if not chunk:
            break
        buf = rest + chunk
        cut = buf.rfind(b"\n") + 1
        rest = buf[cut:]
        if cut:
            yield buf[:cut]
    if rest:
        yield rest


class ReadStats:
    """Counts kept by :func:`read_jsonl`: records read and malformed lines skipped."""

    def __init__(self) -> None:
        self.records = 0
        self.skipped = 0
        self.skipped_lines: list[int] = []


def read_jsonl(
    path: str | os.PathLike[str],
    on_error: Literal["raise", "skip"] = "raise",
    stats: ReadStats | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file, one per non-empty line.

    A malformed line raises :class:`JsonlError` naming the file and line number, or, with
    ``on_error="skip"``, is skipped and counted in ``stats``.  A corrupt compressed stream
    always raises (no line after it can be trusted).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stats = stats if stats is not None else ReadStats()
    try:
        f = open_binary(path)
    except FileNotFoundError:
        raise JsonlError(path, None, "no such file") from None
    except OSError as e:
        raise JsonlError(path, None, f"cannot open: {e.strerror or e}") from None
    lineno = 0
    loads = orjson.loads
    with f:
        try:
            for block in _blocks(f):
                # Fast path: the block's lines joined by commas into one JSON array, decoded in
                # one orjson call.  A blank line (",,"), two values on one line or a value spanning
                # lines fail it, and so does a line that is not an object (checked below); all
                # fall through to the per-line path, which names the line.
                body = block[:-1] if block.endswith(b"\n") else block
                objs = None
                if body:
                    try:
                        objs = loads(b"[" + body.replace(b"\n", b",") + b"]")
                    except orjson.JSONDecodeError:
                        objs = None
                # as many objects as lines: '{"a":1},{"b":2}' on one line is two values, an error
                if objs and len(objs) == body.count(b"\n") + 1 and all(type(o) is dict for o in objs):
                    lineno += len(objs)
                    stats.records += len(objs)
                    yield from objs
                    continue
                for line in block.splitlines():
                    lineno += 1
                    try:
                        obj = loads(line)
                    except orjson.JSONDecodeError as e:
                        if not line.strip():
                            continue  # a blank line holds no record
                        err = f"malformed JSON: {e}"
                    else:
                        if type(obj) is dict:
                            stats.records += 1
                            yield obj
                            continue
                        err = f"expected a JSON object, got {type(obj).__name__}"
                    if on_error == "raise":
                        raise JsonlError(path, lineno, err) from None
                    stats.skipped += 1
                    stats.skipped_lines.append(lineno)
        except (EOFError, OSError, zlib.error, zstandard.ZstdError) as e:
            # lineno + 1: the first line that could not be read whole (the lines before it were
            # yielded; for gzip the CRC at the end covers them too, so treat all as suspect).
            raise JsonlError(path, lineno + 1, f"corrupt or truncated {compression_of(path) or 'file'} stream: {e}") from None
