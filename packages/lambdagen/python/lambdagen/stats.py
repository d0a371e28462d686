"""Statistics of a finished dataset directory: histograms and duplicate counts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import xxhash
from datacore import load_manifest, read_jsonl


def dataset_stats(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every record of ``out`` and count depths, sizes, trace lengths, statuses and
    duplicates (start terms across traces, (input, target) pairs) over the whole dataset."""
    root = Path(out)
    manifest = load_manifest(root)
    hist: dict[str, Counter[Any]] = {k: Counter() for k in ("depth", "size", "total_steps", "status", "split")}
    pairs: set[bytes] = set()
    starts: dict[str, str] = {}
    dup_pairs = dup_starts = records = 0
    trace_split: dict[str, str] = {}
    split_conflicts = 0
    for shard in manifest["shards"]:
        for split, f in shard["files"].items():
            for rec in read_jsonl(root / f["path"]):
                records += 1
                m = rec["meta"]
                hist["depth"][m["depth"]] += 1
                hist["size"][m["size"] // 20 * 20] += 1
                hist["total_steps"][m["total_steps"]] += 1
                hist["status"][m["status"]] += 1
                hist["split"][split] += 1
                key = xxhash.xxh3_128_digest(rec["input"].encode() + b"|" + rec["target"].encode())
                if key in pairs:
                    dup_pairs += 1
                pairs.add(key)
                tid = m["trace_id"]
                if trace_split.setdefault(tid, split) != split:
                    split_conflicts += 1
                if m.get("step") == 0:
                    prev = starts.get(rec["input"])
                    if prev is not None and prev != tid:
                        dup_starts += 1
                    starts[rec["input"]] = tid
    return {
        "records": records,
        "traces": len(trace_split),
        "duplicate_pairs": dup_pairs,
        "duplicate_start_terms": dup_starts,
        "traces_in_two_splits": split_conflicts,
        "histograms": {k: dict(sorted(v.items(), key=lambda kv: (str(type(kv[0])), kv[0]))) for k, v in hist.items()},
    }
