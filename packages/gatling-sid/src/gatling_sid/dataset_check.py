"""Validate a whole dataset directory (what ``gatling-sid validate DIR`` runs).

Gold records must pass every check; a negative must be flagged with the rule it is labelled
with (and its twin must be in the dataset): negatives flagged with that rule alone and those also
flagged by another rule (a tampered argument is often ungrounded too) are counted apart; the gold requests must be diverse
(near-duplicate rate at most ``max_near_dup_rate``).  A record that is not a trace at all
raises :class:`~gatling_sid.errors.TraceFormatError` naming file, line and field.

A dataset directory is read through its manifest: the shard files it lists are the ones
validated, and a file that is missing, has another size or sha256, holds another number of
records than the manifest says, or lies in a split folder without being listed, is a dataset
problem naming the file (so a shard truncated at a line boundary, which parses cleanly, is
still caught).  A dataset with no records at all fails too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import attrs
from datacore import load_manifest, read_jsonl, verify_dataset

from .diversity import DiversityCounter, DiversityReport
from .errors import TraceFormatError
from .models import GoldTrace
from .mutations import HardNegative
from .registry import DomainRegistry
from .validator import TraceValidator

__all__ = ["DatasetValidation", "dataset_files", "validate_dataset"]


@attrs.frozen
class DatasetValidation:
    """Outcome of :func:`validate_dataset`."""

    gold: int
    gold_passed: int
    negatives: int
    negatives_exact: int
    violations: dict[str, int]
    examples: tuple[str, ...]
    diversity: DiversityReport
    dataset_problems: tuple[str, ...]
    negatives_with_others: int = 0

    @property
    def ok(self) -> bool:
        """True if every record and the dataset-level checks pass."""
        return (
            self.gold == self.gold_passed
            and self.negatives == self.negatives_exact + self.negatives_with_others
            and not self.dataset_problems
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = attrs.asdict(self)
        d["ok"] = self.ok
        return d


def _manifest_files(p: Path) -> tuple[list[tuple[Path, int | None]], list[str]]:
    """(shard files to read with the record count the manifest gives, problems) of a dataset directory."""
    m = load_manifest(p)
    problems = [f"{p}/{q}" for q in verify_dataset(p)]  # "train/part-00000.jsonl: missing" etc.
    listed: list[tuple[Path, int | None]] = []
    names: set[str] = set()
    try:
        for shard in m["shards"]:
            for entry in shard["files"].values():
                names.add(str(Path(entry["path"])))
                f = p / entry["path"]
                if f.exists():
                    listed.append((f, int(entry["records"])))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise TraceFormatError(f"{p / 'dataset.json'}: shards: expected entries with files, path and records ({e!r})") from None
    for split in ("train", "val", "test"):
        for f in sorted((p / split).glob("*.jsonl*")):
            if f.name.startswith(".") or f.name.endswith(".tmp"):
                continue  # a writer's temporary file, not part of the dataset
            if str(f.relative_to(p)) not in names:
                problems.append(f"{f}: shard file not listed in {p / 'dataset.json'} (not validated)")
    return sorted(listed), problems


def _deep_line(path: Path, after: int) -> int | None:
    """The first line after ``after`` that the standard library cannot decode for nesting (plain files only)."""
    import json

    if path.suffix != ".jsonl":
        return None
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if n <= after:
                continue
            try:
                json.loads(line)
            except RecursionError:
                return n
            except ValueError:
                continue
    return None


def _records(path: Path) -> Any:
    """``read_jsonl(path)``, with a line nested too deeply to decode turned into one error naming file and line.

    (datacore's reader lets the decoder's RecursionError through; worked around here.)
    """
    n = 0
    it = iter(read_jsonl(path))
    while True:
        try:
            rec = next(it)
        except StopIteration:
            return
        except RecursionError:
            line = _deep_line(path, n)
            at = f"{path}:{line}" if line is not None else f"{path}: a line after line {n}"
            raise TraceFormatError(f"{at}: JSON nested too deeply to decode (not a trace record)") from None
        n += 1
        yield rec


def dataset_files(path: str | Path) -> list[Path]:
    """The JSONL shard files of a dataset directory (those its manifest lists), or ``[path]`` for a file."""
    p = Path(path)
    if p.is_file():
        return [p]
    files = [f for f, _ in _manifest_files(p)[0]]
    if not files:
        raise TraceFormatError(f"{p}: no shard files under train/, val/ or test/")
    return files


def validate_dataset(
    path: str | Path,
    registry: DomainRegistry | None = None,
    *,
    max_near_dup_rate: float = 0.01,
    near_dup_threshold: float = 0.8,
    max_examples: int = 10,
) -> DatasetValidation:
    """Check every record of a dataset (see the module docstring)."""
    reg = registry or DomainRegistry.load()
    validator = TraceValidator(reg)
    div_acc = DiversityCounter()  # texts and counts only: a 1M-trace dataset is not held in memory
    n_gold = 0
    gold_ids: set[str] = set()
    twins: list[tuple[str, str, int]] = []
    viol: Counter[str] = Counter()
    examples: list[str] = []
    passed = negs = exact = with_others = 0

    def note(where: str, msg: str) -> None:
        if len(examples) < max_examples:
            examples.append(f"{where}: {msg}")

    p = Path(path)
    problems: list[str] = []
    if p.is_file():
        files: list[tuple[Path, int | None]] = [(p, None)]
    else:
        files, problems = _manifest_files(p)
    total = 0
    for f, expected in files:
        lineno = 0
        for lineno, rec in enumerate(_records(f), 1):
            where = f"{f}:{lineno}"
            if not isinstance(rec, dict):
                raise TraceFormatError(f"{where}: expected a JSON object")
            label = rec.get("label", "gold")
            if label == "negative":
                neg = HardNegative.from_dict(rec, where)
                negs += 1
                rep = validator.validate(neg.trace)
                if rep.rules == {neg.rule}:
                    exact += 1
                elif neg.rule in rep.rules:
                    with_others += 1
                else:
                    viol["negative_missed"] += 1
                    note(where, f"negative {neg.trace.trace_id} labelled {neg.rule} but flagged {sorted(rep.rules)}")
                twins.append((neg.twin_id, where, lineno))
            elif label == "gold":
                tr = GoldTrace.from_dict(rec, where)
                div_acc.add(tr)
                n_gold += 1
                gold_ids.add(tr.trace_id)
                rep = validator.validate(tr)
                if rep.ok:
                    passed += 1
                for v in rep.violations:
                    viol[v.rule] += 1
                    note(where, f"{tr.trace_id} {v.rule} at {v.call_id or 'request'}: {v.message}")
            else:
                raise TraceFormatError(f"{where}: label {label!r} is not 'gold' or 'negative'")
        total += lineno
        if expected is not None and lineno != expected:
            problems.append(f"{f}: {lineno:,} records, the manifest says {expected:,}")
    missing = [(t, w) for t, w, _ in twins if t not in gold_ids]
    div = div_acc.report(len(reg.tools), near_dup_threshold)
    problems += div.problems(max_near_dup_rate=max_near_dup_rate)
    if total == 0:
        problems.append(f"{p}: no records to validate")
    if missing:
        problems.append(f"pairs: {len(missing)} negatives whose gold twin is not in the dataset (first: {missing[0][1]})")
    return DatasetValidation(
        n_gold,
        passed,
        negs,
        exact,
        dict(viol.most_common()),
        tuple(examples),
        div,
        tuple(problems),
        negatives_with_others=with_others,
    )
