"""``gatling-sid export``: a dataset's records in another training format (see :mod:`gatling_sid.exporters`)."""

from __future__ import annotations

from pathlib import Path

import orjson

from .dataset_check import _records, dataset_files
from .errors import TraceFormatError
from .exporters import dpo_pair, to_hf_chat, to_openai
from .models import GoldTrace
from .mutations import HardNegative
from .registry import DomainRegistry

__all__ = ["export_dataset"]


def export_dataset(dataset: str | Path, out: str | Path, fmt: str, registry: DomainRegistry, *, tool_list: str = "domain") -> int:
    """Write the export of ``dataset`` to ``out`` (JSONL); returns the number of records written."""
    files = dataset_files(dataset)
    tools = registry.tools
    n = 0
    tmp = Path(str(out) + ".tmp")
    twins: dict[str, GoldTrace] = {}
    if fmt == "dpo":  # first pass: the negatives' twin ids, so only those gold traces are held
        wanted = {
            rec["negative"]["twin_id"]
            for f in files
            for rec in _records(f)
            if isinstance(rec, dict) and rec.get("label") == "negative" and isinstance(rec.get("negative"), dict)
        }
        for f in files:
            for i, rec in enumerate(_records(f), 1):
                if isinstance(rec, dict) and rec.get("label", "gold") == "gold" and rec.get("trace_id") in wanted:
                    twins[rec["trace_id"]] = GoldTrace.from_dict(rec, f"{f}:{i}")
    with open(tmp, "wb") as fh:
        for f in files:
            for i, rec in enumerate(_records(f), 1):
                where = f"{f}:{i}"
                if not isinstance(rec, dict):
                    raise TraceFormatError(f"{where}: expected a JSON object")
                label = rec.get("label", "gold")
                if fmt == "dpo":
                    if label != "negative":
                        continue
                    neg = HardNegative.from_dict(rec, where)
                    twin = twins.get(neg.twin_id)
                    if twin is None:
                        raise TraceFormatError(f"{where}: negative's twin {neg.twin_id!r} is not in the dataset")
                    obj = dpo_pair(neg.trace, twin, tools, rule=neg.rule, tool_list=tool_list)
                elif label == "gold":
                    tr = GoldTrace.from_dict(rec, where)
                    obj = (to_openai if fmt == "openai" else to_hf_chat)(tr, tools, tool_list=tool_list)
                else:
                    continue
                fh.write(orjson.dumps(obj) + b"\n")
                n += 1
    tmp.replace(out)
    return n
