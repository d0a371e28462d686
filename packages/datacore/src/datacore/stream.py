"""A training reader over a dataset directory: global shuffle, any worker count, exact resume.

``StreamingDataset(path, split="train", seed=0)`` reads the split of a datacore dataset
directory (a local path or any fsspec URL) in an order that depends only on ``seed`` and the
epoch: not on the number of DataLoader workers, nor on how often it was stopped and resumed.

How the order is made:

* the epoch order ``P`` is a permutation of the split's global indices (records numbered
  shard by shard, line by line), drawn from ``numpy.random.default_rng([seed, epoch])``
  (``shuffle=False``: the identity);
* rank ``r`` of ``world_size`` reads ``P[r::world_size]`` (ranks differ by at most one
  sample; ``drop_last=True`` drops the tail so all ranks get the same count);
* inside a rank, DataLoader worker ``w`` of ``W`` yields the rank's samples in blocks of
  ``batch_size``: blocks ``w, w+W, w+2W, ...``.  A DataLoader asks its workers round robin
  one batch at a time, so its output is the rank's sequence exactly, for any ``W``, as long
  as the loader's ``batch_size`` is the dataset's (:meth:`StreamingDataset.loader` sets both).

Resume: ``state_dict(consumed)`` records the epoch and how many of this rank's samples were
consumed; after ``load_state_dict`` the next iteration yields exactly the remainder, split
over any number of workers.  Used without workers (or through :meth:`loader`), the dataset
counts consumed samples itself.

Random access: ``ds[i]`` is the record at global index ``i`` (unshuffled).  Each shard file
gets a line index (byte offsets of its lines), built once and stored beside it as
``part-NNNNN.lineidx``, keyed by the file's sha256 so a stale index is never used; when the
directory is read-only the index is kept in memory.  Compressed or remote shards are
decompressed / downloaded once into ``cache_dir`` (a local directory) and read from there.

torch is optional (``pip install 'datacore[torch]'``): without it the class is a plain iterable.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .errors import DatacoreError, ManifestError
from .manifest import MANIFEST

try:  # torch is optional: with it, DataLoader sees an IterableDataset
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object  # type: ignore[assignment,misc]

INDEX_SUFFIX = ".lineidx"
_MAGIC = b"DCLIDX01"
_STATE_VERSION = 1


def _fs_and_root(path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None) -> tuple[Any, str, bool]:
    """(filesystem, root, is_local).  Local paths need no fsspec."""
    s = os.fspath(path)
    if "://" not in s or s.startswith("file://"):
        return None, s[len("file://") :] if s.startswith("file://") else s, True
    import fsspec

    fs, root = fsspec.core.url_to_fs(s, **(storage_options or {}))
    return fs, root.rstrip("/"), False


def _read_bytes(fs: Any, path: str) -> bytes:
    if fs is None:
        return Path(path).read_bytes()
    with fs.open(path, "rb") as f:
        return f.read()


def _decompress(data: bytes, name: str) -> bytes:
    if name.endswith(".gz"):
        import gzip

        return gzip.decompress(data)
    if name.endswith(".zst"):
        import zstandard

        out = bytearray()
        with zstandard.ZstdDecompressor().stream_reader(data) as r:
            while chunk := r.read(1 << 20):
                out += chunk
        return bytes(out)
    return data


def line_offsets(data: bytes | mmap.mmap | memoryview) -> np.ndarray:
    """Byte offsets of the lines of a JSONL buffer: ``offsets[i]:offsets[i+1]`` is line ``i`` (uint64)."""
    arr = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, np.uint8)
    ends = np.flatnonzero(arr == 10).astype(np.uint64) + 1
    if len(arr) and arr[-1] != 10:
        ends = np.append(ends, np.uint64(len(arr)))
    return np.concatenate([np.zeros(1, np.uint64), ends])


def _encode_index(sha256: str, offsets: np.ndarray) -> bytes:
    return _MAGIC + bytes.fromhex(sha256) + struct.pack("<Q", len(offsets) - 1) + offsets.astype("<u8").tobytes()


def _decode_record(raw: bytes) -> dict[str, Any]:
    """One record line (orjson, datacore's one JSON library); a line that is not an object is an error."""
    obj = orjson.loads(raw)
    if type(obj) is not dict:
        raise DatacoreError(f"a record line holds a JSON {type(obj).__name__}, not an object")
    return obj


def _decode_index(data: bytes, sha256: str) -> np.ndarray | None:
    head = len(_MAGIC) + 32 + 8
    if len(data) < head or data[: len(_MAGIC)] != _MAGIC or data[len(_MAGIC) : len(_MAGIC) + 32] != bytes.fromhex(sha256):
        return None
    (n,) = struct.unpack("<Q", data[head - 8 : head])
    if len(data) != head + 8 * (n + 1):
        return None
    return np.frombuffer(data, dtype="<u8", offset=head).astype(np.uint64)


class _Shard:
    """One shard file of the split: its records, opened lazily (mmap of a local plain file)."""

    def __init__(self, reader: _Source, entry: Mapping[str, Any]) -> None:
        self.reader = reader
        self.path: str = entry["path"]
        self.records = int(entry["records"])
        self.sha256: str = entry["sha256"]
        self._buf: Any = None
        self._offsets: np.ndarray | None = None
        self._list: list[int] | None = None
        self._lock = threading.Lock()

    def _open(self) -> None:
        with self._lock:
            if self._buf is not None:
                return
            buf = self.reader.local_plain(self)
            offsets = self.reader.index_for(self, buf)
            if len(offsets) - 1 != self.records:
                raise DatacoreError(
                    f"{self.reader.url}/{self.path}: {len(offsets) - 1} lines, the manifest says {self.records} records"
                )
            self._offsets = offsets
            self._buf = buf

    def __getstate__(self) -> dict[str, Any]:
        # memory maps and locks do not cross processes: a worker opens its own
        return {k: v for k, v in self.__dict__.items() if k not in ("_buf", "_list", "_offsets", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._buf = self._list = self._offsets = None
        self._lock = threading.Lock()

    def view(self) -> tuple[Any, list[int]]:
        """(buffer, line offsets as a list): line ``i`` is ``buf[off[i]:off[i + 1]]``."""
        if self._buf is None:
            self._open()
        if self._list is None:
            assert self._offsets is not None
            self._list = self._offsets.tolist()
        return self._buf, self._list

    def line(self, i: int) -> bytes:
        buf, off = self.view()
        return bytes(buf[off[i] : off[i + 1]])

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()
        self._buf = None
        self._list = None


class _Source:
    """Where a split's files live, how to get plain local bytes of each and its line index."""

    def __init__(self, path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None, storage_options: Any) -> None:
        self.url = os.fspath(path)
        self.fs, self.root, self.local = _fs_and_root(path, storage_options)
        self.storage_options = storage_options
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.memory_index: dict[str, np.ndarray] = {}

    def join(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def manifest(self) -> dict[str, Any]:
        where = self.join(MANIFEST)
        try:
            m = orjson.loads(_read_bytes(self.fs, where))
        except FileNotFoundError:
            raise ManifestError(
                f"{self.url}: no {MANIFEST} (not a datacore dataset directory, or the run is unfinished)"
            ) from None
        except orjson.JSONDecodeError as e:
            raise ManifestError(f"{self.url}/{MANIFEST}: corrupt manifest: {e}") from None
        if not isinstance(m, dict) or "shards" not in m or "splits" not in m:
            raise ManifestError(f"{self.url}/{MANIFEST}: not a datacore manifest")
        return m

    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
            self._cache_dir = Path(tempfile.gettempdir()) / "datacore-stream" / key
        return self._cache_dir

    def local_plain(self, shard: _Shard) -> Any:
        """A buffer of the shard's plain JSONL bytes: mmap of the file, or of its cached copy."""
        if shard.records == 0:
            return b""
        if self.local and not shard.path.endswith((".gz", ".zst")):
            p = self.join(shard.path)
        else:
            cached = self.cache_dir() / f"{shard.sha256}.jsonl"
            if not cached.exists():
                data = _decompress(_read_bytes(self.fs, self.join(shard.path)), shard.path)
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_name(f"{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, cached)
            p = str(cached)
        with open(p, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def index_path(self, shard: _Shard) -> str:
        base = shard.path
        for ext in (".gz", ".zst"):
            base = base.removesuffix(ext)
        return self.join(base.removesuffix(".jsonl") + INDEX_SUFFIX)

    def index_for(self, shard: _Shard, buf: Any) -> np.ndarray:
        """The shard's line index: from memory, from its ``.lineidx`` file, or built now (and stored if writable)."""
        if shard.path in self.memory_index:
            return self.memory_index[shard.path]
        where = self.index_path(shard)
        try:
            found = _decode_index(_read_bytes(self.fs, where), shard.sha256)
        except (FileNotFoundError, OSError):
            found = None
        if found is None:
            found = line_offsets(buf)
            try:
                self._store(where, _encode_index(shard.sha256, found))
            except OSError:  # read-only dataset directory: keep it in memory
                pass
        self.memory_index[shard.path] = found
        return found

    def _store(self, where: str, data: bytes) -> None:
        tmp = f"{where}.{os.getpid()}.{threading.get_ident()}.tmp"
        if self.fs is None:
            Path(tmp).write_bytes(data)
            os.replace(tmp, where)
        else:
            self.fs.pipe_file(where, data)


class StreamingDataset(_Base):  # type: ignore[misc,valid-type]
    """An iterable over one split of a dataset directory for a PyTorch DataLoader (see the module docstring).

    ``transform`` (a picklable callable, record -> sample) runs in the workers, one sample per
    record.  ``rank`` / ``world_size`` default to ``torch.distributed`` when it is initialised,
    else 0 / 1.  Call :meth:`set_epoch` at the start of every epoch, as with ``DistributedSampler``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        split: str = "train",
        *,
        shuffle: bool = True,
        seed: int = 0,
        batch_size: int = 1,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise DatacoreError(f"batch_size must be >= 1, got {batch_size}")
        self.source = _Source(path, cache_dir, storage_options)
        m = self.source.manifest()
        if split not in m["splits"]:
            raise DatacoreError(f"{path}: no split {split!r} (splits: {', '.join(m['splits'])})")
        self.split = split
        self.shards = [
            _Shard(self.source, sh["files"][split])
            for sh in sorted(m["shards"], key=lambda s: s["index"])
            if split in sh["files"]
        ]
        counts = np.array([s.records for s in self.shards], dtype=np.int64)
        self._starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)])
        self.num_records = int(self._starts[-1])
        self.shuffle = shuffle
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.transform = transform
        if rank is None or world_size is None:
            r, w = _dist_rank_world()
            rank = r if rank is None else rank
            world_size = w if world_size is None else world_size
        if world_size < 1 or not 0 <= rank < world_size:
            raise DatacoreError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self._start = 0  # samples of this rank's epoch sequence to skip (resume)
        self._pos = 0  # position reached by an iteration in this process
        self._decode = _decode_record

    # -- order --------------------------------------------------------------------------------
    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The global indices of the whole split in epoch order (all ranks)."""
        e = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(self.num_records, dtype=np.int64)
        return np.random.default_rng([self.seed, e]).permutation(self.num_records)

    def rank_order(self, epoch: int | None = None) -> np.ndarray:
        """The global indices this rank reads in an epoch, in order."""
        order = self.epoch_order(epoch)
        if self.drop_last:
            order = order[: len(order) - len(order) % self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        """Samples this rank yields in a full epoch."""
        n = self.num_records
        if self.drop_last:
            return n // self.world_size
        return (n - self.rank + self.world_size - 1) // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (a new shuffle); a resumed position is kept only for its own epoch."""
        if epoch != self.epoch:
            self._start = 0
            self._pos = 0
        self.epoch = int(epoch)

    # -- reading ------------------------------------------------------------------------------
    def raw(self, index: int) -> bytes:
        """The JSON line (without the newline) of the record at global index ``index``."""
        if not 0 <= index < self.num_records:
            raise IndexError(f"index {index} out of range for {self.num_records} records of split {self.split!r}")
        f = int(np.searchsorted(self._starts, index, side="right")) - 1
        return bytes(self.shards[f].line(index - int(self._starts[f]))).rstrip(b"\r\n")

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The record at global index ``index`` (records numbered shard by shard, line by line)."""
        if index < 0:
            index += self.num_records
        return self._decode(self.raw(index))

    def _worker(self) -> tuple[int, int]:
        try:
            from torch.utils.data import get_worker_info
        except ImportError:
            return 0, 1
        info = get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def positions(self, worker: int, num_workers: int, start: int | None = None) -> np.ndarray:
        """Positions in this rank's epoch sequence that worker ``worker`` of ``num_workers`` yields, in order."""
        start = self._start if start is None else start
        n = len(self) - start
        if n <= 0:
            return np.zeros(0, np.int64)
        pos = np.arange(n, dtype=np.int64)
        mine = (pos // self.batch_size) % num_workers == worker
        return pos[mine] + start

    def __iter__(self) -> Iterator[Any]:
        worker, num_workers = self._worker()
        in_process = num_workers == 1 and worker == 0
        pos = self.positions(worker, num_workers)
        gs = self.rank_order()[pos]
        fs = np.searchsorted(self._starts, gs, side="right") - 1
        locs = (gs - self._starts[fs]).tolist()
        shards = self.shards
        decode = self._decode
        transform = self.transform
        if in_process:
            self._pos = self._start
        for f, i in zip(fs.tolist(), locs):
            buf, off = shards[f].view()
            rec = decode(buf[off[i] : off[i + 1]])
            if in_process:
                self._pos += 1
            yield transform(rec) if transform is not None else rec
        if in_process:
            # the epoch (or its remainder) was read here: the resume point is spent
            self._start = 0

    # -- resume -------------------------------------------------------------------------------
    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """The position to resume from: ``consumed`` samples of this rank's current epoch were used.

        Without ``consumed`` the dataset's own count is used (right when it was iterated in
        this process, or through :meth:`loader`).
        """
        done = self._pos if consumed is None else self._start + int(consumed)
        return {
            "version": _STATE_VERSION,
            "epoch": self.epoch,
            "consumed": min(done, len(self)),
            "seed": self.seed,
            "shuffle": self.shuffle,
            "records": self.num_records,
            "split": self.split,
            "rank": self.rank,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``: the next iteration yields exactly the samples not yet consumed."""
        for k in ("seed", "shuffle", "records", "split", "world_size", "rank", "drop_last"):
            if state.get(k) != getattr(self, {"records": "num_records"}.get(k, k)):
                raise DatacoreError(
                    f"cannot resume: state has {k}={state.get(k)!r}, this dataset has "
                    f"{getattr(self, {'records': 'num_records'}.get(k, k))!r}"
                )
        self.epoch = int(state["epoch"])
        self._start = int(state["consumed"])
        self._pos = self._start

    # -- convenience --------------------------------------------------------------------------
    def loader(self, batch_size: int | None = None, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset whose batch size matches (so the order holds)
        and that counts what it yielded, so ``loader.state_dict()`` needs no argument."""
        if batch_size is not None:
            self.batch_size = int(batch_size)
        return _CountingLoader(self, **kwargs)

    def close(self) -> None:
        """Release the memory maps."""
        for s in self.shards:
            s.close()


def _dist_rank_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _CountingLoader:
    """A DataLoader wrapper that counts the samples it yielded, for :meth:`StreamingDataset.state_dict`."""

    def __init__(self, dataset: StreamingDataset, **kwargs: Any) -> None:
        from torch.utils.data import DataLoader

        self.dataset = dataset
        self.consumed = 0
        self._base = dataset._start
        self._loader = DataLoader(dataset, batch_size=dataset.batch_size, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        self.consumed = 0
        self._base = self.dataset._start
        bs = self.dataset.batch_size
        left = len(self.dataset) - self._base
        for batch in self._loader:
            self.consumed = min(self.consumed + bs, left)
            yield batch
        self.dataset._start = 0

    def __len__(self) -> int:
        return len(self._loader)

    def state_dict(self) -> dict[str, Any]:
        """Resume point after the batches yielded so far."""
        state = self.dataset.state_dict(consumed=0)
        state["consumed"] = min(self._base + self.consumed, len(self.dataset))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """See :meth:`StreamingDataset.load_state_dict`."""
        self.dataset.load_state_dict(state)
        self.consumed = 0
