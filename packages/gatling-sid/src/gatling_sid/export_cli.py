"""``gatling-sid export``: a dataset's records in another training format.

Formats (:data:`EXPORT_FORMATS`): ``openai``, ``hf``, ``dpo`` (:mod:`gatling_sid.exporters`) and ``xlam``,
``bfcl``, ``toolace`` (:mod:`gatling_sid.peer_formats`).  ``bfcl`` writes the test entries to ``out`` and
their possible answers to ``possible_answer/<name of out>`` beside it, the layout of BFCL's data folder.
Everything is written to temporary files and renamed at the end, so a failed export leaves nothing.
Dialogues that are not one request answered by calls cannot be an xLAM/BFCL entry: they are skipped and
counted in ``stats["skipped_dialogues"]`` (the CLI prints it); every other format writes them turn by turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .dataset_check import _records, dataset_files
from .errors import TraceFormatError
from .exporters import dpo_pair, to_hf_chat, to_openai
from .models import GoldTrace
from .mutations import HardNegative
from .peer_formats import single_request, to_bfcl, to_toolace, to_xlam
from .registry import DomainRegistry

__all__ = ["EXPORT_FORMATS", "bfcl_answer_path", "export_dataset"]

EXPORT_FORMATS = ("openai", "hf", "dpo", "xlam", "bfcl", "toolace")


def bfcl_answer_path(out: str | Path) -> Path:
    """Where ``--format bfcl`` writes the possible answers of the entries written to ``out``."""
    out = Path(out)
    return out.parent / "possible_answer" / out.name


def export_dataset(
    dataset: str | Path,
    out: str | Path,
    fmt: str,
    registry: DomainRegistry,
    *,
    tool_list: str = "domain",
    parallel: bool = True,
    stats: dict[str, int] | None = None,
) -> int:
    """Write the export of ``dataset`` to ``out`` (JSONL); returns the number of records written.

    ``parallel=False`` (``openai``/``hf``): one call per assistant turn instead of one turn per wave.
    ``stats`` (if given) gets ``skipped_dialogues``: dialogues an xLAM/BFCL entry cannot hold.
    """
    if fmt not in EXPORT_FORMATS:
        raise TraceFormatError(f"--format: got {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    files = dataset_files(dataset)
    tools = registry.tools
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
    answers = bfcl_answer_path(out) if fmt == "bfcl" else None
    ans_tmp = Path(str(answers) + ".tmp") if answers is not None else None
    made_dir = ans_tmp is not None and not ans_tmp.parent.exists()
    if ans_tmp is not None:
        ans_tmp.parent.mkdir(parents=True, exist_ok=True)
    ans_fh = open(ans_tmp, "wb") if ans_tmp is not None else None  # noqa: SIM115 - closed below
    try:
        n, skipped = _write(files, tmp, fmt, tools, twins, tool_list, ans_fh, parallel)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if ans_tmp is not None:
            ans_tmp.unlink(missing_ok=True)
            if made_dir:
                ans_tmp.parent.rmdir()
        raise
    finally:
        if ans_fh is not None:
            ans_fh.close()
    if ans_tmp is not None and answers is not None:
        ans_tmp.replace(answers)
    tmp.replace(out)
    if stats is not None:
        stats["skipped_dialogues"] = skipped
    return n


def _write(
    files: list[Path], tmp: Path, fmt: str, tools: Any, twins: dict[str, GoldTrace], tool_list: str, ans_fh: Any, parallel: bool
) -> tuple[int, int]:
    n = skipped = 0
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
                    try:
                        obj = dpo_pair(neg.trace, twin, tools, rule=neg.rule, tool_list=tool_list)
                    except ValueError as e:
                        raise TraceFormatError(f"{where}: {e}") from None
                elif label == "gold":
                    tr = GoldTrace.from_dict(rec, where)
                    if fmt in ("xlam", "bfcl") and not single_request(tr):
                        skipped += 1
                        continue
                    if fmt == "xlam":
                        obj = to_xlam(tr, tools, tool_list=tool_list, record_id=n)
                    elif fmt == "bfcl":
                        obj, truth = to_bfcl(tr, tools, tool_list=tool_list, index=n)
                        ans_fh.write(orjson.dumps(truth) + b"\n")
                    elif fmt == "toolace":
                        obj = to_toolace(tr, tools, tool_list=tool_list)
                    else:
                        obj = (to_openai if fmt == "openai" else to_hf_chat)(tr, tools, tool_list=tool_list, parallel=parallel)
                else:
                    continue
                fh.write(orjson.dumps(obj) + b"\n")
                n += 1
    return n, skipped
