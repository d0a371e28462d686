"""Training-reader benchmark: datacore.stream vs Hugging Face datasets (iterable) vs MosaicML streaming (MDS).

    python packages/datacore/bench/bench_stream.py [--quick] [--records N] [--json PATH]

The same records (fsmdata-like: tokens, text, class, meta) are read, one full epoch each,
through a torch DataLoader with 0 and 2 workers (batch 256, batches left as lists), by

* ``datacore.stream.StreamingDataset`` over the dataset directory (global shuffle per epoch;
  and without shuffle);
* ``datasets.load_dataset(DIR, split="train", streaming=True)`` (HF's iterable: shard order
  shuffled plus a 10,000-record buffer; and without shuffle);
* ``streaming.StreamingDataset`` over MDS shards written from the same records (its default
  ``py1e`` shuffle; and without shuffle), when ``mosaicml-streaming`` can be imported.

samples/s is wall-clock over the whole epoch, worker start-up included (what a training job
waits for); "first" is the time to the first batch.  Each reader is checked to return every
record exactly once.  Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import attrs
from datacore import ShardTask, Telemetry, build_dataset

BATCH = 256


@attrs.frozen
class BenchGen:
    name: str = "bench"
    version: str = "1.0"

    def config_dict(self) -> dict[str, Any]:
        return {}

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        rng = random.Random(task.seed)
        for i in range(task.count):
            toks = [rng.randrange(64) for _ in range(rng.randint(4, 64))]
            yield {
                "tokens": toks,
                "text": "".join(chr(97 + t % 26) for t in toks),
                "class": rng.choice("AIR"),
                "length": len(toks),
                "meta": {"i": task.start + i},
            }

    def split_key(self, record: dict[str, Any]) -> str:
        return str(record["meta"]["i"])


def as_list(batch):
    return batch


def _import_streaming() -> Any:
    """Import MosaicML streaming, or None.  Its text/vision helpers import transformers at module
    load; when transformers is absent, empty stand-ins let the core (MDS reader) import."""
    stubbed = []
    try:
        import transformers  # noqa: F401
    except ImportError:
        root = types.ModuleType("transformers")
        root.__path__ = []  # type: ignore[attr-defined]
        for sub, names in (
            ("feature_extraction_utils", ["BatchFeature"]),
            ("tokenization_utils_base", ["BatchEncoding"]),
            ("models", []),
            ("models.auto", []),
            ("models.auto.tokenization_auto", ["AutoTokenizer"]),
        ):
            mod = types.ModuleType(f"transformers.{sub}")
            for n in names:
                setattr(mod, n, type(n, (dict,), {}))
            sys.modules[f"transformers.{sub}"] = mod
            stubbed.append(f"transformers.{sub}")
        sys.modules["transformers"] = root
        stubbed.append("transformers")
    try:
        import streaming

        return streaming
    except Exception as e:  # noqa: BLE001 - any import failure means: not measured
        print(f"mosaicml-streaming not importable ({type(e).__name__}: {e}); MDS not measured", file=sys.stderr)
        return None
    finally:
        for name in stubbed:  # others (datasets' pickler) test for a real transformers in sys.modules
            del sys.modules[name]


def epoch(loader: Any, key: Any) -> tuple[float, float, list]:
    t0 = time.perf_counter()
    first = None
    ids = []
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        ids += [key(r) for r in batch]
    return time.perf_counter() - t0, first or 0.0, ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="50,000 records instead of 400,000")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--json", type=Path, default=Path("bench_stream.json"))
    ap.add_argument("--workers", default="0,2")
    args = ap.parse_args()
    n = args.records or (50_000 if args.quick else 400_000)
    workers = [int(w) for w in args.workers.split(",")]
    os.environ.setdefault("DATACORE_NO_PROGRESS", "1")
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    results = []
    try:
        out = tmp / "ds"
        t0 = time.perf_counter()
        m = build_dataset(
            BenchGen(), out, n, 0, workers=2, shard_size=10_000, split_ratios=(1.0, 0.0, 0.0), progress=False
        ).manifest
        n_train = m["splits"]["train"]
        print(
            f"dataset: {n_train:,} train records, {len(m['shards'])} shards, {time.perf_counter() - t0:.1f}s to build",
            file=sys.stderr,
        )

        from datacore.stream import StreamingDataset as DcStream

        def dc(shuffle: bool, w: int):
            ds = DcStream(out, "train", shuffle=shuffle, seed=0, batch_size=BATCH)
            return DataLoader(ds, batch_size=BATCH, num_workers=w, collate_fn=as_list)

        import datasets

        datasets.disable_progress_bars()

        def hf(shuffle: bool, w: int):
            ds = datasets.load_dataset(str(out), split="train", streaming=True)
            if shuffle:
                ds = ds.shuffle(seed=0, buffer_size=10_000)
            return DataLoader(ds, batch_size=BATCH, num_workers=w, collate_fn=as_list)

        readers: list[tuple[str, Any, Any]] = [
            ("datacore.stream", dc, lambda r: r["meta"]["i"]),
            ("HF datasets (iterable)", hf, lambda r: r["meta"]["i"]),
        ]
        streaming = _import_streaming()
        if streaming is not None:
            mds = tmp / "mds"
            from datacore import read_jsonl

            cols = {"id": "str", "tokens": "json", "text": "str", "class": "str", "length": "int", "meta": "json"}
            with streaming.MDSWriter(out=str(mds), columns=cols, size_limit=1 << 26) as w:
                for p in sorted((out / "train").glob("part-*.jsonl")):
                    for rec in read_jsonl(p):
                        w.write(rec)

            def mosaic(shuffle: bool, w: int):
                from streaming.base.util import clean_stale_shared_memory

                clean_stale_shared_memory()
                ds = streaming.StreamingDataset(local=str(mds), shuffle=shuffle, shuffle_seed=0, batch_size=BATCH)
                return DataLoader(ds, batch_size=BATCH, num_workers=w, collate_fn=as_list)

            readers.append((f"MosaicML streaming {streaming.__version__} (MDS)", mosaic, lambda r: r["meta"]["i"]))
        for shuffle in (True, False):
            for w in workers:
                for name, make, key in readers:
                    loader = make(shuffle, w)
                    secs, first, ids = epoch(loader, key)
                    complete = len(ids) == n_train and len(set(ids)) == n_train
                    row = {
                        "reader": name,
                        "shuffle": shuffle,
                        "workers": w,
                        "records": len(ids),
                        "seconds": round(secs, 3),
                        "samples_per_s": round(len(ids) / secs),
                        "first_batch_s": round(first, 3),
                        "complete": complete,
                    }
                    results.append(row)
                    print(
                        f"{name:38s} shuffle={shuffle!s:5s} workers={w}  {row['samples_per_s']:>9,}/s  first {first:6.2f}s"
                        f"  {'ok' if complete else 'INCOMPLETE/DUPLICATES'}",
                        file=sys.stderr,
                    )
                    del loader
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print("\n| reader | shuffle | workers | samples/s | first batch (s) | every record once |")
    print("|---|---|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['reader']} | {'yes' if r['shuffle'] else 'no'} | {r['workers']} | {r['samples_per_s']:,} | {r['first_batch_s']:.2f} | {'yes' if r['complete'] else 'NO'} |"
        )
    print(
        f"\n{n:,} records, batch {BATCH}; load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    args.json.write_text(json.dumps({"records": n, "batch": BATCH, "loadavg": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()
