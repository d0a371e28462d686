"""Compare two dataset directories: how a user audits a re-run or a new version.

:func:`diff_datasets` reports

* config differences (generator, versions, config, seed, n, shard size, split ratios/salt,
  compression), field by field;
* per-stratum and per-histogram differences of the merged telemetry (counts and shares);
* per-field distribution differences (type, share present, min/max, distinct values, mean
  length, and the total variation distance between the value / length distributions);
* records only in one of them (by ``id``), records with the same ``id`` but other content,
  and whether every common record is in the same split;
* files that no longer match their own manifest (size or sha256).

Two directories are identical when all of these are empty.  Every file is re-hashed; when
both manifests list the same files with the same sha256 and every file matches, the records
are known to be the same without decoding them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson
import xxhash

from .errors import ManifestError
from .jsonl import read_jsonl
from .manifest import TELEMETRY, dataset_files, load_manifest, verify_dataset
from .report import FieldStats, scan_dataset
from .telemetry import Telemetry

_EXAMPLES = 5


@attrs.define
class DatasetDiff:
    """The differences between dataset directories ``a`` and ``b`` (see the module docstring)."""

    a: str
    b: str
    config: list[str] = attrs.field(factory=list)
    histograms: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    fields: dict[str, list[str]] = attrs.field(factory=dict)
    records_a: int = 0
    records_b: int = 0
    only_a: int = 0
    only_b: int = 0
    only_a_examples: list[str] = attrs.field(factory=list)
    only_b_examples: list[str] = attrs.field(factory=list)
    content_differs: int = 0
    content_examples: list[str] = attrs.field(factory=list)
    split_moves: dict[str, int] = attrs.field(factory=dict)
    split_examples: list[str] = attrs.field(factory=list)
    same_files: bool = False
    integrity: list[str] = attrs.field(factory=list)

    @property
    def splits_agree(self) -> bool:
        """True when every record in both is in the same split in both."""
        return not self.split_moves

    @property
    def identical(self) -> bool:
        """True when nothing differs."""
        return (
            not self.integrity
            and not self.config
            and not self.histograms
            and not self.fields
            and self.only_a == 0
            and self.only_b == 0
            and self.content_differs == 0
            and self.splits_agree
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``datacore diff --json``)."""
        d = attrs.asdict(self)
        d["identical"] = self.identical
        d["splits_agree"] = self.splits_agree
        return d

    def to_text(self) -> str:
        """A human summary, one finding per line."""
        out = [f"A = {self.a} ({self.records_a:,} records)", f"B = {self.b} ({self.records_b:,} records)"]
        if self.identical:
            out.append(
                "identical: same config, same records in the same splits"
                + (" (every file has the same sha256)" if self.same_files else "")
            )
            return "\n".join(out)
        if self.integrity:
            out.append(f"integrity: {len(self.integrity)} file(s) differ from their own manifest")
            out += [f"  {x}" for x in self.integrity]
        if self.config:
            out.append(f"config: {len(self.config)} difference(s)")
            out += [f"  {c}" for c in self.config]
        else:
            out.append("config: same")
        out.append(
            f"records: {self.only_a:,} only in A, {self.only_b:,} only in B, {self.content_differs:,} with the same id and other content"
        )
        for label, ex in (
            ("only in A", self.only_a_examples),
            ("only in B", self.only_b_examples),
            ("other content", self.content_examples),
        ):
            if ex:
                out.append(f"  e.g. {label}: {', '.join(ex)}")
        if self.splits_agree:
            out.append("splits: agree (every common record is in the same split)")
        else:
            moved = sum(self.split_moves.values())
            out.append(
                f"splits: DISAGREE for {moved:,} common record(s): "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(self.split_moves.items()))
            )
            if self.split_examples:
                out.append(f"  e.g. {', '.join(self.split_examples)}")
        for name, rows in self.histograms.items():
            out.append(f"histogram {name}: {len(rows)} bucket(s) differ (largest share change first)")
            for r in rows[:10]:
                out.append(
                    f"  {r['bucket']}: A {r['a']:,} ({r['share_a']:.2%})  B {r['b']:,} ({r['share_b']:.2%})  {100 * (r['share_b'] - r['share_a']):+.2f} pp"
                )
            if len(rows) > 10:
                out.append(f"  ... and {len(rows) - 10} more")
        for split, lines in self.fields.items():
            out.append(f"fields ({split}): {len(lines)} difference(s)")
            out += [f"  {x}" for x in lines]
        return "\n".join(out)


def _flat_diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _flat_diff(a.get(k, "<unset>"), b.get(k, "<unset>"), f"{path}.{k}" if path else str(k))
        return out
    return [] if a == b else [f"{path}: A {a!r}, B {b!r}"]


def _identity(m: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(m.get("spec", {}))
    spec.pop("generator", None)
    spec.pop("version", None)
    return {"generator": m.get("generator"), "version": m.get("version"), "datacore_version": m.get("datacore_version"), **spec}


def _telemetry(root: Path) -> Telemetry:
    try:
        return Telemetry.from_json((root / TELEMETRY).read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{root / TELEMETRY}: missing") from None
    except orjson.JSONDecodeError as e:
        raise ManifestError(f"{root / TELEMETRY}: corrupt ({e})") from None


def _histogram_diff(ha: Mapping[str, int], hb: Mapping[str, int]) -> list[dict[str, Any]]:
    ta, tb = sum(ha.values()) or 1, sum(hb.values()) or 1
    rows: list[dict[str, Any]] = []
    for k in set(ha) | set(hb):
        a, b = int(ha.get(k, 0)), int(hb.get(k, 0))
        if a != b:
            rows.append({"bucket": k, "a": a, "b": b, "share_a": a / ta, "share_b": b / tb})
    rows.sort(key=lambda r: (-abs(r["share_b"] - r["share_a"]), r["bucket"]))
    return rows


def _tvd(ha: Mapping[Any, int], hb: Mapping[Any, int]) -> float:
    ta, tb = sum(ha.values()) or 1, sum(hb.values()) or 1
    return 0.5 * sum(abs(ha.get(k, 0) / ta - hb.get(k, 0) / tb) for k in set(ha) | set(hb))


def _field_diff(fa: Mapping[str, FieldStats], na: int, fb: Mapping[str, FieldStats], nb: int) -> list[str]:
    out = []
    for name in sorted(set(fa) | set(fb)):
        a, b = fa.get(name), fb.get(name)
        if a is None or b is None:
            out.append(f"{name}: only in {'B' if a is None else 'A'}")
            continue
        pa, pb = a.present / (na or 1), b.present / (nb or 1)
        if a.main_type() != b.main_type():
            out.append(f"{name}: type A {a.main_type()}, B {b.main_type()}")
        if pa != pb:
            out.append(f"{name}: present A {pa:.1%}, B {pb:.1%}")
        if (a.min, a.max) != (b.min, b.max):
            out.append(f"{name}: range A {a.min}..{a.max}, B {b.min}..{b.max}")
        if a.distinct != b.distinct:
            out.append(f"{name}: distinct values A {a.distinct:,}, B {b.distinct:,}")
        if a.lengths != b.lengths:
            mean = lambda h: sum(k * c for k, c in h.items()) / (sum(h.values()) or 1)  # noqa: E731
            out.append(
                f"{name}: length mean A {mean(a.lengths):.2f}, B {mean(b.lengths):.2f}; distribution TVD {_tvd(a.lengths, b.lengths):.3f}"
            )
        if a.value_counts is not None and b.value_counts is not None and a.value_counts != b.value_counts:
            out.append(f"{name}: value distribution TVD {_tvd(a.value_counts, b.value_counts):.3f}")
    return out


def _records(root: Path, m: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """id -> (split, xxh64 of the record's canonical JSON) for every record."""
    out: dict[str, tuple[str, int]] = {}
    for e in dataset_files(dict(m)):
        for rec in read_jsonl(root / e["path"]):
            rid = str(rec.get("id"))
            out[rid] = (e["split"], xxhash.xxh64_intdigest(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)))
    return out


def diff_datasets(a: str | os.PathLike[str], b: str | os.PathLike[str], scan_limit: int = 20_000) -> DatasetDiff:
    """Compare dataset directories ``a`` and ``b`` (see the module docstring)."""
    ra, rb = Path(a), Path(b)
    ma, mb = load_manifest(ra), load_manifest(rb)
    d = DatasetDiff(str(a), str(b), records_a=int(ma.get("records", 0)), records_b=int(mb.get("records", 0)))
    d.config = _flat_diff(_identity(ma), _identity(mb))
    ta, tb = _telemetry(ra), _telemetry(rb)
    for name in sorted(set(ta.histograms) | set(tb.histograms)):
        rows = _histogram_diff(ta.histograms.get(name, {}), tb.histograms.get(name, {}))
        if rows:
            d.histograms[name] = rows
    files_a = [(f["split"], f["path"], f["sha256"]) for f in dataset_files(ma)]
    files_b = [(f["split"], f["path"], f["sha256"]) for f in dataset_files(mb)]
    # Files are re-hashed: the fast path must not trust a manifest whose files were changed since.
    d.integrity = [f"A: {p}" for p in verify_dataset(ra)] + [f"B: {p}" for p in verify_dataset(rb)]
    d.same_files = files_a == files_b and not d.integrity
    if not d.same_files:
        sa, sb = scan_dataset(ra, ma, limit=scan_limit), scan_dataset(rb, mb, limit=scan_limit)
        for split in sorted(set(sa) | set(sb)):
            x, y = sa.get(split), sb.get(split)
            lines = _field_diff(x.fields if x else {}, x.scanned if x else 0, y.fields if y else {}, y.scanned if y else 0)
            if lines:
                d.fields[split] = lines
        rec_a, rec_b = _records(ra, ma), _records(rb, mb)
        only_a = [k for k in rec_a if k not in rec_b]
        only_b = [k for k in rec_b if k not in rec_a]
        d.only_a, d.only_b = len(only_a), len(only_b)
        d.only_a_examples, d.only_b_examples = only_a[:_EXAMPLES], only_b[:_EXAMPLES]
        for k, (split_a, h_a) in rec_a.items():
            other = rec_b.get(k)
            if other is None:
                continue
            split_b, h_b = other
            if split_a != split_b:
                key = f"{split_a}->{split_b}"
                d.split_moves[key] = d.split_moves.get(key, 0) + 1
                if len(d.split_examples) < _EXAMPLES:
                    d.split_examples.append(f"{k} ({key})")
            if h_a != h_b:
                d.content_differs += 1
                if len(d.content_examples) < _EXAMPLES:
                    d.content_examples.append(k)
    return d
