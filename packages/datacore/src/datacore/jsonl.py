"""Streaming JSONL reading and writing (msgspec).

Compression follows the file name: ``.jsonl`` (plain), ``.jsonl.gz`` (gzip, written with
``mtime=0`` so output is byte-reproducible) and ``.jsonl.zst`` (zstandard).  Writes go to
``NAME.tmp`` and are renamed to ``NAME`` only when complete, so a reader never sees half a
file and a killed run leaves no truncated output under the final name.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import numpy as np
import zstandard

from .errors import JsonlError

_FLUSH_BYTES = 1 << 20
_BATCH = 1024


def _to_builtin(obj: Any) -> Any:
    """msgspec's hook for types it does not know: numpy arrays and scalars become lists / numbers."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write a value of type {type(obj).__name__} as JSON")


# msgspec, not orjson, for JSONL lines: encode_lines/encode_into append to one buffer in C, which
# is 1.5-2x faster per record than orjson.dumps plus a bytearray append in Python (measured on
# this machine; the JSONL figure in docs/benchmarks.md).  For the str/int/float/bool/None/list/
# dict records generators make, the bytes are the same as orjson's; floats with an exponent read
# "1e300" instead of orjson's "1e+300".  Note that msgspec writes a set in its iteration order:
# records must not hold sets (a set of strings iterates differently in every process).
_ENCODER = msgspec.json.Encoder(enc_hook=_to_builtin)
# Reading: one typed call per 64 KiB block (a line that is not an object fails in C).
_DECODER = msgspec.json.Decoder(dict)
ZSTD_LEVEL = 3


def compression_of(path: str | os.PathLike[str]) -> str | None:
    """Return ``"gz"``, ``"zst"`` or ``None`` from a file name's extension."""
    name = str(path)
    if name.endswith(".gz"):
        return "gz"
    if name.endswith(".zst"):
        return "zst"
    return None


def dumps(record: Any) -> bytes:
    """Serialize one record as a JSONL line (with the trailing newline)."""
    return _ENCODER.encode(record) + b"\n"


class JsonlWriter:
    """Write records to a JSONL file atomically (temporary name, renamed on success).

    Use as a context manager; if the block raises, the temporary file is removed and the
    final name is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str], zstd_level: int = ZSTD_LEVEL) -> None:
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.count = 0
        self._zstd_level = zstd_level
        self._raw: IO[bytes] | None = None
        self._stream: Any = None
        # One growing bytearray that the encoder appends to.  (A list of thousands of orjson bytes
        # objects joined later ran ~8x slower here: allocator behaviour.)
        self._buf = bytearray()

    def __enter__(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp_path, "wb")
        kind = compression_of(self.path)
        if kind == "gz":
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
        elif kind == "zst":
            cctx = zstandard.ZstdCompressor(level=self._zstd_level)
            self._stream = cctx.stream_writer(self._raw, closefd=False)
        else:
            self._stream = self._raw
        return self

    def write(self, record: Any) -> None:
        """Append one record."""
        buf = self._buf
        end = len(buf)
        try:
            _ENCODER.encode_into(record, buf, -1)
        except BaseException:
            del buf[end:]  # a record that fails to encode leaves nothing behind
            raise
        buf += b"\n"
        self.count += 1
        if len(buf) >= _FLUSH_BYTES:
            self._flush()

    def write_many(self, records: Iterable[Any]) -> None:
        """Append many records, encoded ``_BATCH`` at a time in one call."""
        assert self._stream is not None
        it = iter(records)
        while batch := list(itertools.islice(it, _BATCH)):
            self._buf += _ENCODER.encode_lines(batch)
            self.count += len(batch)
            if len(self._buf) >= _FLUSH_BYTES:
                self._flush()

    def write_line_bytes(self, line: bytes) -> None:
        """Append one already-serialized line (must end with a newline)."""
        self._buf += line
        self.count += 1
        if len(self._buf) >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        assert self._stream is not None
        if self._buf:
            self._stream.write(self._buf)
            self._buf.clear()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._stream is not None and self._raw is not None
        try:
            if exc_type is None:
                self._flush()
            if self._stream is not self._raw:
                self._stream.close()
            self._raw.close()
        finally:
            if exc_type is None:
                os.replace(self.tmp_path, self.path)
            else:
                self.tmp_path.unlink(missing_ok=True)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> int:
    """Write all records to ``path`` atomically; return how many were written."""
    with JsonlWriter(path) as w:
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
    decode_lines, decode = _DECODER.decode_lines, _DECODER.decode
    with f:
        try:
            for block in _blocks(f):
                nlines = block.count(b"\n") + (not block.endswith(b"\n"))
                # Fast path: the whole block in one call.  It is taken only if it gave exactly one
                # object per line (so a blank line, two values on one line or a non-object falls
                # through to the per-line path below, which names the line).
                try:
                    objs = decode_lines(block)
                    ok = len(objs) == nlines
                except msgspec.DecodeError:
                    ok = False
                if ok:
                    lineno += nlines
                    stats.records += nlines
                    yield from objs
                    continue
                for line in block.split(b"\n")[:nlines]:
                    lineno += 1
                    if not line.strip():
                        continue
                    try:
                        obj = decode(line)
                    except msgspec.DecodeError as e:
                        if on_error == "raise":
                            raise JsonlError(path, lineno, f"malformed JSON: {e}") from None
                        stats.skipped += 1
                        stats.skipped_lines.append(lineno)
                        continue
                    stats.records += 1
                    yield obj
        except (EOFError, OSError, zstandard.ZstdError) as e:
            raise JsonlError(path, lineno + 1, f"corrupt or truncated {compression_of(path) or 'file'} stream: {e}") from None
