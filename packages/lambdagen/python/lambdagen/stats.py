"""Statistics of a finished dataset directory: histograms and duplicate counts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import xxhash
from datacore import load_manifest, read_jsonl

#: The statuses a trace can end with (every record's ``meta.status`` is one of them).
STATUSES = ("normal_form", "step_cap", "size_cap", "cycle", "strategy_normal_form")


def dataset_stats(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every record of ``out`` and count depths, sizes, trace lengths, statuses and
    duplicates over the whole dataset: ``duplicate_start_terms`` counts step-0 inputs (start
    terms) seen before, ``duplicate_pairs`` repeated (input, target) pairs, ``duplicate_ids``
    repeated record ids;
    ``traces_labelled`` counts traces whose records all carry the same known ``status``."""
    root = Path(out)
    manifest = load_manifest(root)
    hist: dict[str, Counter[Any]] = {
        k: Counter() for k in ("depth", "size", "total_steps", "status", "split", "cell", "traces_by_cell")
    }
    pairs: set[bytes] = set()
    starts: Counter[str] = Counter()
    ids: set[Any] = set()
    dup_pairs = dup_ids = records = 0
    trace_split: dict[str, str] = {}
    trace_status: dict[str, Any] = {}
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
                hist["cell"][m.get("cell", "?")] += 1
                if tid not in trace_split:
                    hist["traces_by_cell"][m.get("cell", "?")] += 1
                # A trace is labelled if all its records carry one and the same known status.
                st = m.get("status")
                if trace_status.setdefault(tid, st) != st or st not in STATUSES:
                    trace_status[tid] = None
                if trace_split.setdefault(tid, split) != split:
                    split_conflicts += 1
                # The step-0 record's input (a whole-trace record's too) is its trace's start
                # term: a start term seen twice is a repeated trace, whatever its trace_id says.
                if m.get("step") == 0:
                    starts[rec["input"]] += 1
                rid = rec.get("id")
                if rid in ids:
                    dup_ids += 1
                ids.add(rid)
    return {
        "records": records,
        "traces": len(trace_split),
        "duplicate_pairs": dup_pairs,
        "duplicate_start_terms": sum(c - 1 for c in starts.values()),
        "duplicate_ids": dup_ids,
        "traces_in_two_splits": split_conflicts,
        "traces_labelled": sum(st is not None for st in trace_status.values()),
        "traces_unlabelled": sum(st is None for st in trace_status.values()),
        "histograms": {k: dict(sorted(v.items(), key=lambda kv: (str(type(kv[0])), kv[0]))) for k, v in hist.items()},
    }
